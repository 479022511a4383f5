-- Live operations: push devices and recorded notification sends, the per-user task-list
-- version the server cache keys on, and NOTIFY on shared-state changes so every instance
-- hears of them at once.

-- A device token belongs to one device; when someone else signs in on that device the app
-- registers the same token again, which moves it to the new account.
CREATE TABLE devices (
  token              text PRIMARY KEY CHECK (length(token) BETWEEN 1 AND 256),
  user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  platform           text NOT NULL CHECK (platform IN ('ios', 'android')),
  registered_at      timestamptz NOT NULL DEFAULT now(),
  -- Set when Expo reports DeviceNotRegistered (app uninstalled, notifications revoked).
  deactivated_at     timestamptz,
  deactivated_reason text
);
CREATE INDEX devices_user_id_idx ON devices (user_id);

-- One row per send. Recipients are frozen into notification_deliveries when the job is
-- created, so resuming after a crash sends to exactly the audience that was planned.
CREATE TABLE notification_jobs (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Lets a caller (the scheduler, an API client retrying) ask for the same send twice safely.
  idempotency_key text UNIQUE CHECK (length(idempotency_key) BETWEEN 1 AND 200),
  title           text NOT NULL,
  body            text NOT NULL,
  priority        text NOT NULL CHECK (priority IN ('default', 'normal', 'high')),
  data            jsonb,
  -- NULL: every user with notifications enabled.
  audience        uuid[],
  requested_by    text NOT NULL,
  status          text NOT NULL DEFAULT 'sending' CHECK (status IN ('sending', 'done', 'failed')),
  recipients      integer NOT NULL DEFAULT 0,
  chunk_count     integer NOT NULL DEFAULT 0,
  -- Which process is sending, and when it last said so; a stale heartbeat means it died.
  runner          jsonb,
  heartbeat_at    timestamptz,
  error           text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz
);
CREATE INDEX notification_jobs_unfinished_idx ON notification_jobs (created_at) WHERE status = 'sending';

-- pending → claimed (a runner owns it; nothing sent) → sending (committed right before each
-- HTTP request) → sent | failed | in_doubt. A chunk never goes back to pending once a request
-- for it may have reached Expo.
CREATE TABLE notification_chunks (
  job_id     uuid NOT NULL REFERENCES notification_jobs (id) ON DELETE CASCADE,
  seq        integer NOT NULL,
  status     text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'claimed', 'sending', 'sent', 'failed', 'in_doubt')),
  -- The runner instance that claimed it; only that runner may move it on to sending.
  claimed_by text,
  claimed_at timestamptz,
  sent_at    timestamptz,
  error      text,
  PRIMARY KEY (job_id, seq)
);
CREATE INDEX notification_chunks_pending_idx ON notification_chunks (job_id, seq) WHERE status = 'pending';

CREATE TABLE notification_deliveries (
  job_id             uuid NOT NULL REFERENCES notification_jobs (id) ON DELETE CASCADE,
  seq                integer NOT NULL,
  token              text NOT NULL,
  -- Erasing a user erases their deliveries too (device tokens are personal data).
  user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  ticket_status      text CHECK (ticket_status IN ('ok', 'error')),
  ticket_id          text,
  ticket_error       text,
  receipt_status     text CHECK (receipt_status IN ('ok', 'error', 'expired')),
  receipt_error      text,
  receipt_checked_at timestamptz,
  -- Lets several instances check receipts without fetching the same ones.
  receipt_claimed_until timestamptz,
  PRIMARY KEY (job_id, token)
);
CREATE INDEX notification_deliveries_chunk_idx ON notification_deliveries (job_id, seq);
CREATE INDEX notification_deliveries_user_id_idx ON notification_deliveries (user_id);
CREATE INDEX notification_deliveries_receipt_due_idx ON notification_deliveries (job_id)
  WHERE ticket_id IS NOT NULL AND receipt_checked_at IS NULL;

-- The server cache keys a user's task list on this version. Every statement that writes a
-- user's tasks replaces it in the same transaction — from the API, the CLI, an erasure or a
-- DBA's UPDATE alike — so a cached page can never outlive the data it was read from.
-- Versions are random, never counters: after a restore they cannot repeat an older value.
CREATE TABLE task_list_versions (
  user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  version uuid NOT NULL
);

CREATE FUNCTION bump_task_list_versions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- The EXISTS skips users being deleted (tasks cascading away with their owner).
  INSERT INTO task_list_versions AS v (user_id, version)
  SELECT changed.user_id, gen_random_uuid()
    FROM (SELECT DISTINCT user_id FROM changed_rows) AS changed
   WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = changed.user_id)
   ORDER BY changed.user_id
  ON CONFLICT (user_id) DO UPDATE SET version = EXCLUDED.version;
  RETURN NULL;
END
$$;

-- PostgreSQL allows transition tables only on single-event triggers, hence three.
CREATE TRIGGER tasks_bump_version_on_insert AFTER INSERT ON tasks
  REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_task_list_versions();
CREATE TRIGGER tasks_bump_version_on_update AFTER UPDATE ON tasks
  REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_task_list_versions();
CREATE TRIGGER tasks_bump_version_on_delete AFTER DELETE ON tasks
  REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_task_list_versions();

-- A NOTIFY raised by the statement that changes shared state is delivered at its commit (and
-- dropped if it rolls back), whichever process made the change.
CREATE FUNCTION notify_app_state_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('shipshape_app_state', TG_TABLE_NAME);
  RETURN NULL;
END
$$;

CREATE TRIGGER app_state_notify AFTER INSERT OR UPDATE OR DELETE ON app_state
  FOR EACH STATEMENT EXECUTE FUNCTION notify_app_state_changed();
CREATE TRIGGER cache_epochs_notify AFTER INSERT OR UPDATE OR DELETE ON cache_epochs
  FOR EACH STATEMENT EXECUTE FUNCTION notify_app_state_changed();
