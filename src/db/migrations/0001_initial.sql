-- The task-list app's schema: accounts, sessions, tasks, preferences, and the shared
-- state every API instance reads (maintenance mode, cache epochs), plus the audit trail.

CREATE TABLE users (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
  password_hash text NOT NULL,
  display_name  text CHECK (length(display_name) <= 200),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Case-insensitive uniqueness without the citext extension, which not every host offers.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TABLE sessions (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- sha256 of the bearer token; the token itself is never stored.
  token_hash   bytea NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  revoked_at   timestamptz,
  ip           text,
  user_agent   text CHECK (length(user_agent) <= 1000)
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE TABLE tasks (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
  notes      text CHECK (length(notes) <= 10000),
  done       boolean NOT NULL DEFAULT false,
  due_date   date,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- "My tasks, newest first" with keyset pagination on (created_at, id).
CREATE INDEX tasks_user_newest_idx ON tasks (user_id, created_at DESC, id DESC);

CREATE TABLE user_preferences (
  user_id               uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  theme                 text NOT NULL DEFAULT 'system' CHECK (theme IN ('light', 'dark', 'system')),
  locale                text,
  time_zone             text,
  notifications_enabled boolean NOT NULL DEFAULT true,
  updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE password_reset_tokens (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  token_hash   bytea NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  used_at      timestamptz,
  requested_ip text
);
CREATE INDEX password_reset_tokens_user_id_idx ON password_reset_tokens (user_id);

-- One row: the state every API instance must agree on.
CREATE TABLE app_state (
  singleton             boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  maintenance_enabled   boolean NOT NULL DEFAULT false,
  maintenance_message   text,
  maintenance_set_by    text,
  maintenance_since     timestamptz,
  minimum_app_version   text,
  updated_at            timestamptz NOT NULL DEFAULT now()
);
INSERT INTO app_state DEFAULT VALUES;

-- Bumping a scope's epoch tells every app (via GET /config) and every instance to drop that cache.
CREATE TABLE cache_epochs (
  scope      text PRIMARY KEY,
  epoch      bigint NOT NULL DEFAULT 0,
  cleared_at timestamptz,
  cleared_by text
);
INSERT INTO cache_epochs (scope) VALUES ('all'), ('tasks'), ('preferences');

CREATE TABLE audit_log (
  id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at      timestamptz NOT NULL DEFAULT now(),
  actor   text NOT NULL,
  action  text NOT NULL,
  -- Kept when the account goes so the trail survives; erasure (GDPR) clears it explicitly.
  user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  ip      text,
  details jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);
CREATE INDEX audit_log_user_id_idx ON audit_log (user_id, at DESC);
