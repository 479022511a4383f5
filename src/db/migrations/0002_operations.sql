-- The operations engine's mirror of run journals. The journal files under STATE_DIR/runs are
-- the record (a restore replaces this database); these tables are a queryable copy.

CREATE SCHEMA IF NOT EXISTS shipshape;

CREATE TABLE shipshape.runs (
  id          text PRIMARY KEY,
  procedure   text NOT NULL,
  command     text NOT NULL,
  risk        text NOT NULL,
  operator    text NOT NULL,
  -- Already redacted: secrets never reach the journal.
  params      jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- The last state written; a run whose process died still says 'running' here
  -- (the journal and `shipshape runs` can tell it is interrupted).
  state       text NOT NULL,
  started_at  timestamptz NOT NULL,
  ended_at    timestamptz,
  exit_code   integer,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_started_at_idx ON shipshape.runs (started_at DESC);

CREATE TABLE shipshape.run_events (
  run_id text NOT NULL REFERENCES shipshape.runs (id) ON DELETE CASCADE,
  seq    integer NOT NULL,
  at     timestamptz NOT NULL,
  type   text NOT NULL,
  data   jsonb NOT NULL,
  PRIMARY KEY (run_id, seq)
);
