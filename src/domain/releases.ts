/**
 * Release records (tables `releases` and `release_rollouts`, migration 0011): one row per
 * version `shipshape release deploy` shipped, with its tag, builds, submissions and each
 * platform's staged rollout, so "the last stable version" is a query, not a memory.
 *
 * A release is stable when its rollouts completed and it was not rolled back since.
 */
import type { Queryable } from '../db/pool.ts';
import { ShipError } from '../errors.ts';

export const platforms = ['ios', 'android'] as const;
export type Platform = (typeof platforms)[number];

export const releaseStates = ['building', 'submitted', 'rolling-out', 'halted', 'completed', 'rolled-back', 'failed'] as const;
export type ReleaseState = (typeof releaseStates)[number];

/** A store's rollout state in Play's words (App Store ACTIVE/PAUSED/COMPLETE map onto them). */
export type RolloutStatus = 'inProgress' | 'halted' | 'completed';

export interface BuildRecord {
  readonly id: string;
  readonly status: string;
  /** Android versionCode / iOS buildNumber, as EAS reports it (`appBuildVersion`). */
  readonly buildVersion: string | null;
}

export interface SubmissionRecord {
  readonly buildId: string;
  readonly submissionId: string | null;
  readonly submittedAt: string;
}

export interface Rollout {
  readonly platform: Platform;
  readonly status: RolloutStatus;
  readonly fraction: number;
  readonly step: number;
  readonly storeRef: string | null;
  readonly updatedAt: Date;
  readonly updatedBy: string;
}

export interface Release {
  readonly version: string;
  readonly gitTag: string;
  readonly gitCommit: string | null;
  readonly bump: string | null;
  readonly state: ReleaseState;
  readonly builds: Partial<Record<Platform, BuildRecord>>;
  readonly submissions: Partial<Record<Platform, SubmissionRecord>>;
  readonly controlVersion: string | null;
  readonly gates: Record<string, unknown> | null;
  readonly nextStepAt: Date | null;
  readonly runId: string | null;
  readonly createdBy: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly completedAt: Date | null;
  readonly rolledBackAt: Date | null;
  readonly rolledBackBy: string | null;
  readonly rollouts: Rollout[];
}

interface ReleaseRow {
  version: string;
  git_tag: string;
  git_commit: string | null;
  bump: string | null;
  state: ReleaseState;
  builds: Partial<Record<Platform, BuildRecord>>;
  submissions: Partial<Record<Platform, SubmissionRecord>>;
  control_version: string | null;
  gates: Record<string, unknown> | null;
  next_step_at: Date | null;
  run_id: string | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  completed_at: Date | null;
  rolled_back_at: Date | null;
  rolled_back_by: string | null;
  rollouts: Array<{
    platform: Platform;
    status: RolloutStatus;
    fraction: number;
    step: number;
    store_ref: string | null;
    updated_at: string;
    updated_by: string;
  }> | null;
}

const SELECT = `SELECT r.*, (SELECT json_agg(o ORDER BY o.platform) FROM release_rollouts o WHERE o.version = r.version) AS rollouts FROM releases r`;

function fromRow(row: ReleaseRow): Release {
  return {
    version: row.version,
    gitTag: row.git_tag,
    gitCommit: row.git_commit,
    bump: row.bump,
    state: row.state,
    builds: row.builds,
    submissions: row.submissions,
    controlVersion: row.control_version,
    gates: row.gates,
    nextStepAt: row.next_step_at,
    runId: row.run_id,
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    completedAt: row.completed_at,
    rolledBackAt: row.rolled_back_at,
    rolledBackBy: row.rolled_back_by,
    rollouts: (row.rollouts ?? []).map((o) => ({
      platform: o.platform,
      status: o.status,
      fraction: Number(o.fraction),
      step: o.step,
      storeRef: o.store_ref,
      updatedAt: new Date(o.updated_at),
      updatedBy: o.updated_by,
    })),
  };
}

/** Records a release as its deploy begins (or finds the one a resumed deploy began; a failed one is started afresh). */
export async function createRelease(
  db: Queryable,
  input: { version: string; gitTag: string; gitCommit: string | null; bump: string; controlVersion: string | null; runId: string; createdBy: string },
): Promise<Release> {
  await db.query(`DELETE FROM release_rollouts o USING releases r WHERE o.version = r.version AND r.version = $1::text AND r.state = 'failed'`, [
    input.version,
  ]);
  await db.query(
    `INSERT INTO releases (version, git_tag, git_commit, bump, control_version, run_id, created_by)
     VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text)
     ON CONFLICT (version) DO UPDATE SET git_commit = EXCLUDED.git_commit, updated_at = now(),
       -- A deploy of a version whose earlier deploy failed starts its record afresh.
       state = CASE WHEN releases.state = 'failed' THEN 'building' ELSE releases.state END,
       builds = CASE WHEN releases.state = 'failed' THEN '{}'::jsonb ELSE releases.builds END,
       submissions = CASE WHEN releases.state = 'failed' THEN '{}'::jsonb ELSE releases.submissions END,
       gates = CASE WHEN releases.state = 'failed' THEN NULL ELSE releases.gates END,
       control_version = EXCLUDED.control_version, run_id = EXCLUDED.run_id, created_by = EXCLUDED.created_by
       WHERE releases.run_id = EXCLUDED.run_id OR releases.state = 'failed'`,
    [input.version, input.gitTag, input.gitCommit, input.bump, input.controlVersion, input.runId, input.createdBy],
  );
  return getRelease(db, input.version);
}

export async function findRelease(db: Queryable, version: string): Promise<Release | undefined> {
  const { rows } = await db.query<ReleaseRow>(`${SELECT} WHERE r.version = $1::text`, [version]);
  return rows[0] === undefined ? undefined : fromRow(rows[0]);
}

export async function getRelease(db: Queryable, version: string): Promise<Release> {
  const release = await findRelease(db, version);
  if (release === undefined)
    throw new ShipError('SHIP_ERR_NOT_FOUND', `There is no release ${version}. \`shipshape release list\` shows the releases recorded.`);
  return release;
}

/** Newest first. */
export async function listReleases(db: Queryable, limit = 20): Promise<Release[]> {
  const { rows } = await db.query<ReleaseRow>(`${SELECT} ORDER BY r.created_at DESC, r.version DESC LIMIT $1::int`, [limit]);
  return rows.map(fromRow);
}

/** The release whose rollout is in progress or halted (at most one at a time), if any. */
export async function currentRollout(db: Queryable): Promise<Release | undefined> {
  const { rows } = await db.query<ReleaseRow>(`${SELECT} WHERE r.state IN ('rolling-out', 'halted', 'submitted') ORDER BY r.created_at DESC LIMIT 1`);
  return rows[0] === undefined ? undefined : fromRow(rows[0]);
}

/** The newest release that completed and was not rolled back, other than `except`. */
export async function lastStableRelease(db: Queryable, except?: string): Promise<Release | undefined> {
  const { rows } = await db.query<ReleaseRow>(
    `${SELECT} WHERE r.state = 'completed' AND r.version <> coalesce($1::text, '') ORDER BY r.created_at DESC LIMIT 1`,
    [except ?? null],
  );
  return rows[0] === undefined ? undefined : fromRow(rows[0]);
}

export async function setReleaseState(db: Queryable, version: string, state: ReleaseState, extra: { rolledBackBy?: string } = {}): Promise<void> {
  await db.query(
    `UPDATE releases SET state = $2::text, updated_at = now(),
       completed_at = CASE WHEN $2::text = 'completed' THEN now() ELSE completed_at END,
       rolled_back_at = CASE WHEN $2::text = 'rolled-back' THEN now() ELSE rolled_back_at END,
       rolled_back_by = CASE WHEN $2::text = 'rolled-back' THEN $3::text ELSE rolled_back_by END,
       next_step_at = CASE WHEN $2::text IN ('rolling-out') THEN next_step_at ELSE NULL END
     WHERE version = $1::text`,
    [version, state, extra.rolledBackBy ?? null],
  );
}

export async function recordBuild(db: Queryable, version: string, platform: Platform, build: BuildRecord): Promise<void> {
  await db.query(`UPDATE releases SET builds = builds || jsonb_build_object($2::text, $3::jsonb), updated_at = now() WHERE version = $1::text`, [
    version,
    platform,
    JSON.stringify(build),
  ]);
}

export async function recordSubmission(db: Queryable, version: string, platform: Platform, submission: SubmissionRecord): Promise<void> {
  await db.query(`UPDATE releases SET submissions = submissions || jsonb_build_object($2::text, $3::jsonb), updated_at = now() WHERE version = $1::text`, [
    version,
    platform,
    JSON.stringify(submission),
  ]);
}

export async function recordRollout(db: Queryable, version: string, rollout: Omit<Rollout, 'updatedAt'>): Promise<void> {
  await db.query(
    `INSERT INTO release_rollouts (version, platform, status, fraction, step, store_ref, updated_by)
     VALUES ($1::text, $2::text, $3::text, $4::float8, $5::int, $6::text, $7::text)
     ON CONFLICT (version, platform) DO UPDATE SET status = EXCLUDED.status, fraction = EXCLUDED.fraction, step = EXCLUDED.step,
       store_ref = coalesce(EXCLUDED.store_ref, release_rollouts.store_ref), updated_by = EXCLUDED.updated_by, updated_at = now()`,
    [version, rollout.platform, rollout.status, rollout.fraction, rollout.step, rollout.storeRef, rollout.updatedBy],
  );
}

export async function recordGates(db: Queryable, version: string, gates: Record<string, unknown>, nextStepAt: Date | null): Promise<void> {
  await db.query(`UPDATE releases SET gates = $2::jsonb, next_step_at = $3::timestamptz, updated_at = now() WHERE version = $1::text`, [
    version,
    JSON.stringify(gates),
    nextStepAt,
  ]);
}

export async function scheduleNextStep(db: Queryable, version: string, at: Date | null): Promise<void> {
  await db.query(`UPDATE releases SET next_step_at = $2::timestamptz, updated_at = now() WHERE version = $1::text`, [version, at]);
}

/**
 * Claims the releases whose next rollout step is due: pushes their `next_step_at` a lease
 * ahead in the same statement, so concurrent workers never evaluate one release twice, and a
 * worker that dies mid-step leaves it to be picked up again when the lease runs out.
 */
export async function claimDueReleases(db: Queryable, now: Date, leaseMs: number): Promise<string[]> {
  const { rows } = await db.query<{ version: string }>(
    `UPDATE releases SET next_step_at = $1::timestamptz + $2::bigint * interval '1 millisecond'
     WHERE version IN (SELECT version FROM releases WHERE state = 'rolling-out' AND next_step_at <= $1::timestamptz FOR UPDATE SKIP LOCKED)
     RETURNING version`,
    [now, leaseMs],
  );
  return rows.map((row) => row.version);
}

/** A release as JSON for the admin API and `--json`. */
export function releaseJson(release: Release): Record<string, unknown> {
  return {
    ...release,
    createdAt: release.createdAt.toISOString(),
    updatedAt: release.updatedAt.toISOString(),
    nextStepAt: release.nextStepAt?.toISOString() ?? null,
    completedAt: release.completedAt?.toISOString() ?? null,
    rolledBackAt: release.rolledBackAt?.toISOString() ?? null,
    rollouts: release.rollouts.map((r) => ({ ...r, updatedAt: r.updatedAt.toISOString() })),
  };
}
