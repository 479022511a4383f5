-- Release records (runbook: Deploy New Version, Rollback Deployment). One row per version
-- shipped with `shipshape release deploy`, so "the last stable version" is a query: the
-- newest release whose rollouts completed and that was not rolled back.
CREATE TABLE releases (
  version        text PRIMARY KEY CHECK (version ~ '^[0-9]+\.[0-9]+\.[0-9]+$'),
  git_tag        text NOT NULL CHECK (length(git_tag) BETWEEN 2 AND 100),
  git_commit     text CHECK (git_commit ~ '^[0-9a-f]{40}$'),
  bump           text CHECK (bump IN ('patch', 'minor', 'major')),
  -- building → submitted → rolling-out → completed; halted while a gate (or an operator) holds it;
  -- rolled-back when `release rollback` replaced it; failed when the deploy stopped.
  state          text NOT NULL DEFAULT 'building'
                 CHECK (state IN ('building', 'submitted', 'rolling-out', 'halted', 'completed', 'rolled-back', 'failed')),
  -- {"ios": {"id", "status", "buildVersion"}, "android": {...}} from eas build:view --json.
  builds         jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- {"ios": {"buildId", "submissionId", "submittedAt"}, "android": {...}}.
  submissions    jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- The version the gates compare against (the last stable release when the deploy began).
  control_version text,
  -- The last gate evaluation: values, verdict, when.
  gates          jsonb,
  -- When the scheduler next evaluates the gates and moves the rollout a step; null when nothing is due.
  next_step_at   timestamptz,
  run_id         text,
  created_by     text NOT NULL CHECK (length(created_by) BETWEEN 1 AND 200),
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  completed_at   timestamptz,
  rolled_back_at timestamptz,
  rolled_back_by text
);
CREATE INDEX releases_created_at_idx ON releases (created_at DESC);
CREATE INDEX releases_next_step_idx ON releases (next_step_at) WHERE next_step_at IS NOT NULL;

-- Each platform's staged rollout in its store, as last set or read through the store's API.
CREATE TABLE release_rollouts (
  version      text NOT NULL REFERENCES releases (version) ON DELETE CASCADE,
  platform     text NOT NULL CHECK (platform IN ('ios', 'android')),
  -- Play: inProgress | halted | completed; App Store phased release: ACTIVE | PAUSED | COMPLETE,
  -- recorded in Play's words (ACTIVE → inProgress, PAUSED → halted, COMPLETE → completed).
  status       text NOT NULL CHECK (status IN ('inProgress', 'halted', 'completed')),
  -- Share of users offered the version, 0..1.
  fraction     double precision NOT NULL CHECK (fraction >= 0 AND fraction <= 1),
  -- Index in the schedule (Play) or Apple's day number (App Store).
  step         integer NOT NULL DEFAULT 0 CHECK (step >= 0),
  -- The store's own id: App Store phased release id; Play: the track name.
  store_ref    text,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  updated_by   text NOT NULL CHECK (length(updated_by) BETWEEN 1 AND 200),
  PRIMARY KEY (version, platform)
);

-- API requests and 5xx answers per app version (the X-App-Version header), per instance and
-- flush period, for the release health gates and /metrics. Kept longer than request_metrics:
-- a gate compares a day of the new version against a day of the old.
CREATE TABLE request_metrics_by_version (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  instance_id  text NOT NULL CHECK (length(instance_id) BETWEEN 1 AND 200),
  period_end   timestamptz NOT NULL,
  app_version  text NOT NULL CHECK (length(app_version) BETWEEN 1 AND 32),
  requests     integer NOT NULL CHECK (requests > 0),
  errors       integer NOT NULL CHECK (errors BETWEEN 0 AND requests)
);
CREATE INDEX request_metrics_by_version_idx ON request_metrics_by_version (app_version, period_end);
