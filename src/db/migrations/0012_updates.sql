-- Over-the-air updates (Expo Updates protocol v1, issue 15).
--
-- An update is one `npx expo export` output published to a channel for one runtime version;
-- its per-platform manifests (launch asset and assets, each with its SHA-256) are kept as
-- JSON, the bytes live in object storage under `assets/<sha256 hex>` (content-addressed, so
-- an asset shared by many updates is stored once).
CREATE TABLE ota_updates (
  id uuid PRIMARY KEY,
  channel text NOT NULL CHECK (channel ~ '^[A-Za-z0-9._-]{1,64}$'),
  runtime_version text NOT NULL CHECK (length(runtime_version) BETWEEN 1 AND 255),
  platforms jsonb NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  extra jsonb NOT NULL DEFAULT '{}'::jsonb,
  message text,
  published_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ota_updates_channel_runtime ON ota_updates (channel, runtime_version, created_at DESC);

-- Every stored asset once, by content: what GET /updates/assets/:hash serves and with which type.
CREATE TABLE ota_assets (
  sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  content_type text NOT NULL,
  bytes bigint NOT NULL CHECK (bytes >= 0),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- What each channel serves to everyone: the newest release not rolled back. Releasing is an
-- insert, rolling back stamps `rolled_back_at`, so the previous release is served again.
CREATE TABLE ota_releases (
  id bigserial PRIMARY KEY,
  channel text NOT NULL,
  runtime_version text NOT NULL,
  update_id uuid NOT NULL REFERENCES ota_updates (id),
  released_at timestamptz NOT NULL DEFAULT now(),
  released_by text NOT NULL,
  rolled_back_at timestamptz,
  rolled_back_by text
);
CREATE INDEX ota_releases_head ON ota_releases (channel, runtime_version, id DESC) WHERE rolled_back_at IS NULL;

-- A staged rollout: `update_id` goes to `percent` of devices (bucketed by EAS-Client-ID), the
-- rest get `control_update_id` (the release served when the rollout began; NULL = the build's
-- embedded update). One rollout at a time per channel and runtime version.
CREATE TABLE ota_rollouts (
  id uuid PRIMARY KEY,
  update_id uuid NOT NULL REFERENCES ota_updates (id),
  channel text NOT NULL,
  runtime_version text NOT NULL,
  control_update_id uuid REFERENCES ota_updates (id),
  schedule numeric(5, 2)[] NOT NULL,
  step integer NOT NULL DEFAULT 0,
  percent numeric(5, 2) NOT NULL CHECK (percent >= 0 AND percent <= 100),
  every_ms bigint NOT NULL CHECK (every_ms > 0),
  -- When the current step may advance, and when the gates are next evaluated (more often, so
  -- a breach halts within a minute rather than at the end of a six-hour step).
  next_step_at timestamptz NOT NULL,
  next_check_at timestamptz NOT NULL,
  auto_rollback boolean NOT NULL DEFAULT false,
  min_sample integer NOT NULL CHECK (min_sample > 0),
  status text NOT NULL CHECK (status IN ('active', 'halted', 'completed', 'rolled-back')),
  status_reason text,
  started_by text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX ota_rollouts_one_open ON ota_rollouts (channel, runtime_version) WHERE status IN ('active', 'halted');
CREATE INDEX ota_rollouts_due ON ota_rollouts (next_check_at) WHERE status = 'active';

-- Health per update and period, what the rollout gates compare: sessions and crashed sessions
-- (release health, e.g. from Sentry) and API requests and errors from devices running it.
CREATE TABLE ota_update_health (
  update_id uuid NOT NULL,
  period_start timestamptz NOT NULL,
  sessions bigint NOT NULL DEFAULT 0,
  crashed_sessions bigint NOT NULL DEFAULT 0,
  requests bigint NOT NULL DEFAULT 0,
  errors bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (update_id, period_start)
);
