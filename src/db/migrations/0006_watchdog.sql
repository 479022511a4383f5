-- The watchdog: request metrics every API instance shares, the alerts raised on the
-- runbook's numbers, and which instance evaluates them when.

-- One row per API instance per flush (every METRICS_FLUSH_INTERVAL): counts and a latency
-- histogram, never single requests, so /metrics, `shipshape health` and the alert evaluation
-- see the whole deployment. The request path only adds to counters in memory. Rows older
-- than an hour are deleted by the instances as they flush.
CREATE TABLE request_metrics (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  instance_id     text NOT NULL CHECK (length(instance_id) BETWEEN 1 AND 200),
  period_start    timestamptz NOT NULL,
  period_end      timestamptz NOT NULL,
  requests        integer NOT NULL CHECK (requests > 0),
  -- Answered 5xx, except the 503s of maintenance mode (the system working as told).
  errors          integer NOT NULL CHECK (errors BETWEEN 0 AND requests),
  duration_ms_sum double precision NOT NULL CHECK (duration_ms_sum >= 0),
  -- Requests per latency bucket, in the order of LATENCY_BUCKETS_MS (src/domain/request-metrics.ts);
  -- the last element counts those slower than the largest bound.
  latency_buckets integer[] NOT NULL,
  CHECK (period_end >= period_start)
);
CREATE INDEX request_metrics_period_end_idx ON request_metrics (period_end);

-- One row per watched condition (error rate, p95, connections, backup age, failed jobs,
-- failed notifications). A condition fires once: only the evaluation that moves its row from
-- resolved (or absent) to firing sends the alert, and only the one that moves it back sends
-- the resolve, so repeated evaluations and concurrent instances never alert twice.
CREATE TABLE watchdog_alerts (
  condition    text PRIMARY KEY CHECK (length(condition) BETWEEN 1 AND 100),
  status       text NOT NULL CHECK (status IN ('firing', 'resolved')),
  -- PagerDuty's dedup_key and the Slack thread's subject: the trigger and its resolve share it.
  dedup_key    text NOT NULL CHECK (length(dedup_key) BETWEEN 1 AND 255),
  -- What the last evaluation found, in one line.
  summary      text NOT NULL,
  opened_at    timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL,
  resolved_at  timestamptz,
  -- False until every target accepted the last trigger or resolve; the next evaluation sends it again.
  delivered    boolean NOT NULL DEFAULT false,
  delivery_error text
);

-- Which instance evaluates: each tries every quarter interval, and the one whose UPDATE moves
-- last_started_at on (a row lock, so concurrent instances queue and then see it moved) runs
-- the evaluation for that interval.
CREATE TABLE watchdog_evaluations (
  id               boolean PRIMARY KEY DEFAULT true CHECK (id),
  last_started_at  timestamptz,
  last_finished_at timestamptz,
  evaluated_by     text,
  evaluations      bigint NOT NULL DEFAULT 0
);
INSERT INTO watchdog_evaluations (id) VALUES (true);

-- Whether the last run of a schedule succeeded (the watchdog's "failed scheduled jobs").
ALTER TABLE schedules ADD COLUMN last_outcome_ok boolean;
