-- The scheduler: recurring schedules, scheduled push notifications, maintenance notices and
-- their emails, admin tokens as hashed records (so a rotation can overlap old and new), and
-- the in-app banner served in /config. The job queue itself (pg-boss) keeps its own schema,
-- `shipshape_queue`, which it installs and migrates on its own when a worker starts.

-- One row per recurring schedule. `next_occurrence_at` is the next time it is due; it is
-- NULL while paused. An instance enqueues a due occurrence and moves `next_occurrence_at` on
-- in one transaction, holding the row with FOR UPDATE SKIP LOCKED, so each occurrence is
-- enqueued exactly once however many instances run.
CREATE TABLE schedules (
  name                text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  task                text NOT NULL,
  -- The canonical phrase, e.g. 'first sunday of every month at 02:00' (src/scheduler/recurrence.ts).
  recurrence          text NOT NULL,
  time_zone           text NOT NULL,
  -- When set, a notice phase runs this long before each occurrence (maintenance: 72 h).
  notice_ms           bigint CHECK (notice_ms > 0),
  -- An occurrence missed by more than this (every instance was down) is skipped, not run late.
  max_lateness_ms     bigint NOT NULL CHECK (max_lateness_ms > 0),
  params              jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- The built-in defaults (daily backup, monthly maintenance) can be paused but not removed.
  is_default          boolean NOT NULL DEFAULT false,
  paused              boolean NOT NULL DEFAULT true,
  next_occurrence_at  timestamptz,
  -- The occurrence whose notice phase was enqueued, so it is enqueued once.
  notice_enqueued_for timestamptz,
  last_occurrence_at  timestamptz,
  last_enqueued_at    timestamptz,
  last_outcome        text,
  last_outcome_at     timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  created_by          text NOT NULL,
  updated_at          timestamptz NOT NULL DEFAULT now(),
  updated_by          text NOT NULL,
  CHECK (paused OR next_occurrence_at IS NOT NULL)
);
CREATE INDEX schedules_due_idx ON schedules (next_occurrence_at) WHERE NOT paused;

-- A push notification to send at a given time (POST /admin/notifications/schedule).
-- pending → queued (an instance handed it to the job queue) → sending → sent | failed;
-- pending → cancelled. Only a pending one can be cancelled.
CREATE TABLE scheduled_notifications (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  scheduled_for       timestamptz NOT NULL,
  title               text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  body                text NOT NULL CHECK (length(body) BETWEEN 1 AND 2000),
  priority            text NOT NULL DEFAULT 'default' CHECK (priority IN ('default', 'normal', 'high')),
  data                jsonb,
  -- What it belongs to, e.g. 'maintenance:2026-03-01T10:00:00.000Z:announcement'; unique so a
  -- repeated `maintenance schedule` does not schedule the same notice twice.
  purpose             text UNIQUE CHECK (length(purpose) BETWEEN 1 AND 200),
  status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'queued', 'sending', 'sent', 'failed', 'cancelled')),
  requested_by        text NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  queued_at           timestamptz,
  queue_job_id        text,
  -- The send it became; its idempotency key is 'schedule:<id>', so a retried job never sends twice.
  notification_job_id uuid REFERENCES notification_jobs (id) ON DELETE SET NULL,
  attempts            integer NOT NULL DEFAULT 0,
  sent_at             timestamptz,
  cancelled_at        timestamptz,
  cancelled_by        text,
  error               text
);
CREATE INDEX scheduled_notifications_due_idx ON scheduled_notifications (scheduled_for) WHERE status = 'pending';
CREATE INDEX scheduled_notifications_created_idx ON scheduled_notifications (created_at DESC);

-- Admin bearer tokens, stored as the sha256 of a 256-bit random token (like sessions). A
-- rotation issues a new one and gives every other live one an expiry, so both work during
-- the overlap. ADMIN_TOKEN from the environment is the bootstrap token: it is valid until a
-- rotation records its hash here with an expiry ('environment').
CREATE TABLE admin_tokens (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  label        text NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
  source       text NOT NULL CHECK (source IN ('issued', 'environment')),
  token_hash   bytea NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  created_by   text NOT NULL,
  expires_at   timestamptz,
  revoked_at   timestamptz,
  revoked_by   text,
  last_used_at timestamptz
);

-- Announced maintenance windows: the emails to every user go out in rate-limited batches from
-- the job queue, and each (window, user) is recorded before its email is sent, so a retried
-- batch never mails anyone twice.
CREATE TABLE maintenance_notices (
  window_starts_at timestamptz PRIMARY KEY,
  window_ends_at   timestamptz NOT NULL,
  subject          text NOT NULL,
  body             text NOT NULL,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'done', 'cancelled')),
  created_at       timestamptz NOT NULL DEFAULT now(),
  created_by       text NOT NULL,
  queued_at        timestamptz,
  finished_at      timestamptz,
  emails_sent      integer NOT NULL DEFAULT 0,
  emails_failed    integer NOT NULL DEFAULT 0,
  CHECK (window_ends_at > window_starts_at)
);
CREATE INDEX maintenance_notices_pending_idx ON maintenance_notices (created_at) WHERE status = 'pending';

CREATE TABLE maintenance_notice_emails (
  window_starts_at timestamptz NOT NULL REFERENCES maintenance_notices (window_starts_at) ON DELETE CASCADE,
  user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  claimed_at       timestamptz NOT NULL DEFAULT now(),
  sent_at          timestamptz,
  error            text,
  PRIMARY KEY (window_starts_at, user_id)
);

-- The in-app banner the app shows until `banner_until` (an announced maintenance window).
ALTER TABLE app_state
  ADD COLUMN banner_message text CHECK (length(banner_message) BETWEEN 1 AND 500),
  ADD COLUMN banner_until   timestamptz,
  ADD COLUMN banner_set_by  text;
