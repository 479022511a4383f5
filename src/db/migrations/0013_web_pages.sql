-- The public status page's uptime (issue 16): one sample per minute of what users met —
-- operational, read-only, maintenance or emergency — written by whichever API instance gets
-- there first (ON CONFLICT DO NOTHING on the minute). request_metrics keeps only an hour, so it
-- cannot answer "the last 90 days"; this table keeps 91 days and prunes as it writes.
CREATE TABLE status_samples (
  minute timestamptz PRIMARY KEY CHECK (minute = date_trunc('minute', minute)),
  state  text NOT NULL CHECK (state IN ('operational', 'read-only', 'maintenance', 'emergency'))
);

-- The operator console's sessions: an admin token is exchanged once for one of these, held in
-- an HttpOnly cookie, so the token itself never sits in a browser. The operator name typed at
-- sign-in is recorded with every action taken under the session. Only hashes are stored.
CREATE TABLE console_sessions (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  token_hash  bytea NOT NULL UNIQUE,
  operator    text NOT NULL CHECK (operator ~ '^[A-Za-z0-9._@-]{1,64}$'),
  -- The admin token it was exchanged for (null: ADMIN_TOKEN itself); revoking that token ends the session.
  admin_token_id uuid,
  ip          text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  ended_at    timestamptz
);
