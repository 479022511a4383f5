-- User management and GDPR: deletion requests with their legal approvals, verified export
-- archives, the erasure ledger (which holds no personal data), and per-account login throttling.

-- A request to erase an account. While one is pending the account cannot log in; the data
-- stays until due_at (the grace period) so the user, or an operator, can still cancel.
CREATE TABLE deletion_requests (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  requested_at       timestamptz NOT NULL DEFAULT now(),
  requested_by       text NOT NULL,
  due_at             timestamptz NOT NULL,
  ticket             text CHECK (length(ticket) BETWEEN 1 AND 200),
  -- How the requester's identity was verified (a KYC reference, "self-service: password re-entered").
  identity_reference text CHECK (length(identity_reference) BETWEEN 1 AND 500),
  cancelled_at       timestamptz,
  cancelled_by       text,
  CHECK (due_at >= requested_at)
);
-- At most one pending request per account.
CREATE UNIQUE INDEX deletion_requests_one_pending_idx ON deletion_requests (user_id) WHERE cancelled_at IS NULL;
CREATE INDEX deletion_requests_due_idx ON deletion_requests (due_at) WHERE cancelled_at IS NULL;

-- Legal sign-off on one request for one ticket. 'legal' is the approval every erasure needs;
-- 'skip-grace' is the second approval that lets an erasure run before due_at.
CREATE TABLE deletion_approvals (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  request_id  uuid NOT NULL REFERENCES deletion_requests (id) ON DELETE CASCADE,
  kind        text NOT NULL CHECK (kind IN ('legal', 'skip-grace')),
  ticket      text NOT NULL CHECK (length(ticket) BETWEEN 1 AND 200),
  approved_by text NOT NULL,
  approved_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (request_id, kind, approved_by)
);

-- Export archives written to legal storage; verified_at is set once the stored copy was read back.
CREATE TABLE user_exports (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  storage_key text NOT NULL,
  location    text NOT NULL,
  bytes       bigint NOT NULL,
  sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  tables      jsonb NOT NULL,
  ticket      text,
  created_by  text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  verified_at timestamptz
);
CREATE INDEX user_exports_user_id_idx ON user_exports (user_id, created_at DESC);

-- One row per erasure, and deliberately no foreign key to users: it must outlive the account.
-- No personal data: the id is a random UUID and the email only a salted hash.
CREATE TABLE erasure_ledger (
  id         uuid PRIMARY KEY,
  user_id    uuid NOT NULL,
  email_hash text NOT NULL CHECK (email_hash ~ '^[0-9a-f]{64}$'),
  ticket     text,
  operator   text NOT NULL,
  reason     text NOT NULL,
  erased_at  timestamptz NOT NULL,
  -- Rows removed per table; counts only.
  tables     jsonb NOT NULL DEFAULT '{}'::jsonb,
  export_key text
);
CREATE UNIQUE INDEX erasure_ledger_user_id_key ON erasure_ledger (user_id);

-- The salt for erasure_ledger.email_hash: 32 random bytes (two UUIDv4s) made once per database.
CREATE TABLE erasure_ledger_salt (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  salt      bytea NOT NULL CHECK (length(salt) = 32)
);
INSERT INTO erasure_ledger_salt (salt)
VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));

-- Consecutive failed logins per account, keyed by the sha256 of the lower-cased email so that
-- unknown addresses are throttled exactly like real ones (no enumeration by timing).
CREATE TABLE login_throttle (
  account_hash    bytea PRIMARY KEY,
  failures        integer NOT NULL CHECK (failures > 0),
  last_failure_at timestamptz NOT NULL
);
CREATE INDEX login_throttle_last_failure_idx ON login_throttle (last_failure_at);
