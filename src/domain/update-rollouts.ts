/**
 * Staged rollouts of an update: `update rollout <id> --schedule 1,5,25,50,100 --every 6h`.
 *
 *   active ──(step due, gates pass)──▶ next percentage … ──(100 %)──▶ completed (released to all)
 *   active ──(gates breach)──▶ halted            (stays at its percentage; an operator decides)
 *                         └──▶ rolled-back       (with --auto-rollback: the control is served again,
 *                                                 or rollBackToEmbedded when there was none)
 *   active | halted ──(`update rollback`)──▶ rolled-back
 *
 * The workers call `advanceDueRollouts` on every tick. Each due rollout is claimed with FOR
 * UPDATE SKIP LOCKED and moved in its own transaction, so with several instances each step is
 * taken once. Gates are evaluated every `checkInterval` (at most a minute), not only when a step
 * ends, so a bad update is halted within a minute of its sample becoming large enough.
 */
import { randomUUID } from 'node:crypto';
import type { Alert } from '../adapters/alerts/index.ts';
import type { Pool, PoolClient, Queryable } from '../db/pool.ts';
import { withTransaction } from '../db/pool.ts';
import { ShipError } from '../errors.ts';
import { recordAudit } from './audit.ts';
import { DEFAULT_GATE_THRESHOLDS, EMPTY_HEALTH, evaluateUpdateGate, type GateThresholds, type GateVerdict, type UpdateHealthSource } from './update-health.ts';
import { releaseUpdate, requireUpdate } from './updates.ts';

export const rolloutStatuses = ['active', 'halted', 'completed', 'rolled-back'] as const;
export type RolloutStatus = (typeof rolloutStatuses)[number];

export interface Rollout {
  readonly id: string;
  readonly updateId: string;
  readonly channel: string;
  readonly runtimeVersion: string;
  readonly controlUpdateId: string | null;
  readonly schedule: readonly number[];
  readonly step: number;
  readonly percent: number;
  readonly everyMs: number;
  readonly nextStepAt: Date;
  readonly autoRollback: boolean;
  readonly minSample: number;
  readonly status: RolloutStatus;
  readonly statusReason: string | null;
  readonly startedBy: string;
  readonly startedAt: Date;
}

const MAX_CHECK_INTERVAL_MS = 60_000;
const checkInterval = (everyMs: number) => Math.min(everyMs, MAX_CHECK_INTERVAL_MS);

/** Parses `1,5,25,50,100`: increasing percentages from 0.01 to 100 ending at 100. */
export function parseSchedule(text: string): number[] {
  const steps = text.split(',').map((part) => Number(part.trim()));
  const problem = steps.some((step) => !Number.isFinite(step) || step <= 0 || step > 100 || Math.round(step * 100) !== step * 100)
    ? 'each step must be a percentage above 0 and at most 100 (two decimals at most)'
    : steps.some((step, index) => index > 0 && step <= steps[index - 1]!)
      ? 'the percentages must increase'
      : steps.at(-1) !== 100
        ? 'the last step must be 100 (the rollout completes there)'
        : undefined;
  if (problem || steps.length === 0)
    throw new ShipError('SHIP_ERR_VALIDATION', `--schedule ${JSON.stringify(text)}: ${problem ?? 'give at least one step'}; e.g. --schedule 1,5,25,50,100.`);
  return steps;
}

export interface StartRolloutInput {
  readonly updateId: string;
  readonly schedule: readonly number[];
  readonly everyMs: number;
  readonly autoRollback: boolean;
  readonly minSample: number;
  readonly actor: string;
}

export async function startRollout(pool: Pool, input: StartRolloutInput): Promise<Rollout> {
  return withTransaction(pool, async (client) => {
    const update = await requireUpdate(client, input.updateId);
    // Serialise with another rollout or release of the same channel and runtime version.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1::text))', [`ota:${update.channel}:${update.runtimeVersion}`]);
    const { rows: released } = await client.query('SELECT 1 FROM ota_releases WHERE update_id = $1::uuid', [update.id]);
    if (released.length > 0)
      throw new ShipError(
        'SHIP_ERR_PREREQUISITE_FAILED',
        `Update ${update.id} was already released to every device; a rollout needs an update published with --staged.`,
      );
    const { rows: open } = await client.query<{ update_id: string }>(
      "SELECT update_id FROM ota_rollouts WHERE channel = $1::text AND runtime_version = $2::text AND status IN ('active', 'halted')",
      [update.channel, update.runtimeVersion],
    );
    if (open[0]) {
      throw new ShipError(
        'SHIP_ERR_PREREQUISITE_FAILED',
        `Update ${open[0].update_id} is already rolling out on ${update.channel} (runtime ${update.runtimeVersion}). Let it complete or run \`shipshape update rollback ${open[0].update_id}\` first.`,
      );
    }
    const { rows: previous } = await client.query<{ id: string }>("SELECT id FROM ota_rollouts WHERE update_id = $1::uuid AND status = 'rolled-back'", [
      update.id,
    ]);
    if (previous[0])
      throw new ShipError(
        'SHIP_ERR_PREREQUISITE_FAILED',
        `Update ${update.id} was rolled back (rollout ${previous[0].id}); publish a fixed update instead of rolling this one out again.`,
      );
    const { rows: head } = await client.query<{ update_id: string }>(
      'SELECT update_id FROM ota_releases WHERE channel = $1::text AND runtime_version = $2::text AND rolled_back_at IS NULL ORDER BY id DESC LIMIT 1',
      [update.channel, update.runtimeVersion],
    );
    const percent = input.schedule[0]!;
    const completed = percent === 100;
    const { rows } = await client.query<RolloutRow>(
      `INSERT INTO ota_rollouts (id, update_id, channel, runtime_version, control_update_id, schedule, step, percent, every_ms, next_step_at, next_check_at, auto_rollback, min_sample, status, started_by)
       VALUES ($1::uuid, $2::uuid, $3::text, $4::text, $5::uuid, $6::numeric[], 0, $7::numeric, $8::bigint, now() + $8::bigint * interval '1 millisecond', now() + $9::bigint * interval '1 millisecond', $10::boolean, $11::int, $12::text, $13::text)
       RETURNING ${ROLLOUT_COLUMNS}`,
      [
        randomUUID(),
        update.id,
        update.channel,
        update.runtimeVersion,
        head[0]?.update_id ?? null,
        input.schedule,
        percent,
        input.everyMs,
        checkInterval(input.everyMs),
        input.autoRollback,
        input.minSample,
        completed ? 'completed' : 'active',
        input.actor,
      ],
    );
    if (completed) await releaseUpdate(client, { updateId: update.id, channel: update.channel, runtimeVersion: update.runtimeVersion, actor: input.actor });
    await recordAudit(client, {
      actor: input.actor,
      action: 'update.rollout.started',
      details: { update: update.id, rollout: rows[0]!.id, schedule: input.schedule.join(','), everyMs: input.everyMs, autoRollback: input.autoRollback },
    });
    return toRollout(rows[0]!);
  });
}

/** What happened to one rollout in one evaluation, for the log and for alerts. */
export interface RolloutOutcome {
  readonly rollout: Rollout;
  readonly action: 'advanced' | 'completed' | 'held' | 'waiting' | 'halted' | 'rolled-back';
  readonly verdict: GateVerdict;
}

export interface AdvanceOptions {
  readonly health: UpdateHealthSource;
  readonly thresholds?: Partial<Omit<GateThresholds, 'minSample'>>;
  /** How many due rollouts one call handles; the next call takes the rest. */
  readonly limit?: number;
}

/** Evaluates every rollout whose check is due, and moves it: one transaction per rollout. */
export async function advanceDueRollouts(pool: Pool, options: AdvanceOptions): Promise<RolloutOutcome[]> {
  const outcomes: RolloutOutcome[] = [];
  for (let handled = 0; handled < (options.limit ?? 20); handled++) {
    const outcome = await withTransaction(pool, async (client) => {
      const { rows } = await client.query<RolloutRow & { step_due: boolean }>(
        `SELECT ${ROLLOUT_COLUMNS}, next_step_at <= now() AS step_due FROM ota_rollouts
          WHERE status = 'active' AND next_check_at <= now()
          ORDER BY next_check_at LIMIT 1 FOR UPDATE SKIP LOCKED`,
      );
      const row = rows[0];
      return row ? evaluateOne(client, toRollout(row), row.step_due, options) : undefined;
    });
    if (!outcome) break;
    outcomes.push(outcome);
  }
  return outcomes;
}

async function evaluateOne(client: PoolClient, rollout: Rollout, stepDue: boolean, options: AdvanceOptions): Promise<RolloutOutcome> {
  const ids = rollout.controlUpdateId ? [rollout.updateId, rollout.controlUpdateId] : [rollout.updateId];
  const health = await options.health.read(ids, rollout.startedAt);
  const thresholds: GateThresholds = { ...DEFAULT_GATE_THRESHOLDS, ...options.thresholds, minSample: rollout.minSample };
  const verdict = evaluateUpdateGate(
    health.get(rollout.updateId) ?? EMPTY_HEALTH,
    rollout.controlUpdateId ? (health.get(rollout.controlUpdateId) ?? EMPTY_HEALTH) : undefined,
    thresholds,
  );
  const interval = checkInterval(rollout.everyMs);

  if (verdict.status === 'breach') {
    const status: RolloutStatus = rollout.autoRollback ? 'rolled-back' : 'halted';
    const moved = await setStatus(client, rollout.id, status, `gates breached at ${rollout.percent} %: ${verdict.summary}`);
    await recordAudit(client, {
      actor: 'scheduler',
      action: rollout.autoRollback ? 'update.rollout.rolled-back' : 'update.rollout.halted',
      details: { update: rollout.updateId, rollout: rollout.id, percent: rollout.percent, reason: verdict.summary },
    });
    return { rollout: moved, action: rollout.autoRollback ? 'rolled-back' : 'halted', verdict };
  }
  if (verdict.status === 'wait' || !stepDue) {
    const { rows } = await client.query<RolloutRow>(
      `UPDATE ota_rollouts SET next_check_at = now() + $2::bigint * interval '1 millisecond', updated_at = now() WHERE id = $1::uuid RETURNING ${ROLLOUT_COLUMNS}`,
      [rollout.id, interval],
    );
    return { rollout: toRollout(rows[0]!), action: verdict.status === 'wait' ? 'waiting' : 'held', verdict };
  }
  const step = rollout.step + 1;
  const percent = rollout.schedule[step] ?? 100;
  const completed = percent >= 100;
  const { rows } = await client.query<RolloutRow>(
    `UPDATE ota_rollouts SET step = $2::int, percent = $3::numeric, status = $4::text,
            next_step_at = now() + every_ms * interval '1 millisecond', next_check_at = now() + $5::bigint * interval '1 millisecond', updated_at = now()
      WHERE id = $1::uuid RETURNING ${ROLLOUT_COLUMNS}`,
    [rollout.id, step, percent, completed ? 'completed' : 'active', interval],
  );
  if (completed)
    await releaseUpdate(client, { updateId: rollout.updateId, channel: rollout.channel, runtimeVersion: rollout.runtimeVersion, actor: 'scheduler' });
  await recordAudit(client, {
    actor: 'scheduler',
    action: completed ? 'update.rollout.completed' : 'update.rollout.advanced',
    details: { update: rollout.updateId, rollout: rollout.id, percent, gates: verdict.summary },
  });
  return { rollout: toRollout(rows[0]!), action: completed ? 'completed' : 'advanced', verdict };
}

async function setStatus(db: Queryable, id: string, status: RolloutStatus, reason: string): Promise<Rollout> {
  const { rows } = await db.query<RolloutRow>(
    `UPDATE ota_rollouts SET status = $2::text, status_reason = $3::text, updated_at = now() WHERE id = $1::uuid RETURNING ${ROLLOUT_COLUMNS}`,
    [id, status, reason],
  );
  return toRollout(rows[0]!);
}

/** What `update rollback <id>` would do, read without changing anything (its plan and prerequisite). */
export type RollbackPlan =
  | { readonly kind: 'rollout'; readonly rollout: Rollout; readonly serves: string }
  | { readonly kind: 'release'; readonly channel: string; readonly runtimeVersion: string; readonly serves: string }
  | { readonly kind: 'nothing'; readonly reason: string };

export async function planRollback(db: Queryable, updateId: string): Promise<RollbackPlan> {
  const update = await requireUpdate(db, updateId);
  const { rows: open } = await db.query<RolloutRow>(
    `SELECT ${ROLLOUT_COLUMNS} FROM ota_rollouts WHERE update_id = $1::uuid AND status IN ('active', 'halted')`,
    [update.id],
  );
  if (open[0]) {
    const rollout = toRollout(open[0]);
    return {
      kind: 'rollout',
      rollout,
      serves: rollout.controlUpdateId
        ? `update ${rollout.controlUpdateId} (the control) to every device`
        : 'rollBackToEmbedded: devices return to the update built into the app',
    };
  }
  const { rows: head } = await db.query<{ update_id: string }>(
    'SELECT update_id FROM ota_releases WHERE channel = $1::text AND runtime_version = $2::text AND rolled_back_at IS NULL ORDER BY id DESC LIMIT 2',
    [update.channel, update.runtimeVersion],
  );
  if (head[0]?.update_id === update.id) {
    const previous = head[1]?.update_id;
    return {
      kind: 'release',
      channel: update.channel,
      runtimeVersion: update.runtimeVersion,
      serves: previous ? `update ${previous} (the release before) to every device` : 'rollBackToEmbedded: devices return to the update built into the app',
    };
  }
  return { kind: 'nothing', reason: `update ${update.id} is neither rolling out nor the release ${update.channel} serves (runtime ${update.runtimeVersion})` };
}

/** Stops serving `updateId`: ends its open rollout, or withdraws its release. */
export async function rollbackUpdate(pool: Pool, updateId: string, actor: string, reason: string): Promise<RollbackPlan> {
  return withTransaction(pool, async (client) => {
    const plan = await planRollback(client, updateId);
    if (plan.kind === 'rollout') {
      await setStatus(client, plan.rollout.id, 'rolled-back', reason);
    } else if (plan.kind === 'release') {
      await client.query(
        'UPDATE ota_releases SET rolled_back_at = now(), rolled_back_by = $4::text WHERE update_id = $1::uuid AND channel = $2::text AND runtime_version = $3::text AND rolled_back_at IS NULL',
        [updateId, plan.channel, plan.runtimeVersion, actor],
      );
    } else {
      throw new ShipError('SHIP_ERR_PREREQUISITE_FAILED', `Nothing to roll back: ${plan.reason}. \`shipshape update list\` shows what each channel serves.`);
    }
    await recordAudit(client, { actor, action: 'update.rolled-back', details: { update: updateId, kind: plan.kind, reason } });
    return plan;
  });
}

export async function rolloutsOf(db: Queryable, updateId: string): Promise<Rollout[]> {
  const { rows } = await db.query<RolloutRow>(`SELECT ${ROLLOUT_COLUMNS} FROM ota_rollouts WHERE update_id = $1::uuid ORDER BY started_at DESC`, [updateId]);
  return rows.map(toRollout);
}

const ROLLOUT_COLUMNS =
  'id, update_id, channel, runtime_version, control_update_id, schedule, step, percent::text AS percent, every_ms::text AS every_ms, next_step_at, auto_rollback, min_sample, status, status_reason, started_by, started_at';

interface RolloutRow {
  id: string;
  update_id: string;
  channel: string;
  runtime_version: string;
  control_update_id: string | null;
  schedule: number[];
  step: number;
  percent: string;
  every_ms: string;
  next_step_at: Date;
  auto_rollback: boolean;
  min_sample: number;
  status: RolloutStatus;
  status_reason: string | null;
  started_by: string;
  started_at: Date;
}

function toRollout(row: RolloutRow): Rollout {
  return {
    id: row.id,
    updateId: row.update_id,
    channel: row.channel,
    runtimeVersion: row.runtime_version,
    controlUpdateId: row.control_update_id,
    schedule: row.schedule.map(Number),
    step: row.step,
    percent: Number(row.percent),
    everyMs: Number(row.every_ms),
    nextStepAt: row.next_step_at,
    autoRollback: row.auto_rollback,
    minSample: row.min_sample,
    status: row.status,
    statusReason: row.status_reason,
    startedBy: row.started_by,
    startedAt: row.started_at,
  };
}

/** The alert a rollout's move raises: a page when it halted or rolled back, a note when it advanced or completed. */
export function rolloutAlert(outcome: RolloutOutcome): Alert | undefined {
  const { rollout, action, verdict } = outcome;
  const where = `${rollout.channel} (runtime ${rollout.runtimeVersion})`;
  const dedupKey = `shipshape-update-rollout-${rollout.id}`;
  const details = { update: rollout.updateId, rollout: rollout.id, percent: rollout.percent };
  switch (action) {
    case 'halted':
      return {
        issueType: 'application',
        severity: 'critical',
        event: 'update.rollout.halted',
        title: `Update rollout halted at ${rollout.percent} % on ${where}`,
        text: `The gates breached: ${verdict.summary}.\nThe update stays on the devices that have it; no more get it. Roll it back with \`shipshape update rollback ${rollout.updateId}\`.`,
        page: 'trigger',
        dedupKey,
        details,
      };
    case 'rolled-back':
      return {
        issueType: 'application',
        severity: 'critical',
        event: 'update.rollout.rolled-back',
        title: `Update rolled back automatically on ${where}`,
        text: `The gates breached at ${rollout.percent} %: ${verdict.summary}.\nDevices are served ${rollout.controlUpdateId ? `update ${rollout.controlUpdateId} (the control)` : 'rollBackToEmbedded (the update built into the app)'} at their next check.`,
        page: 'trigger',
        dedupKey,
        details,
      };
    case 'advanced':
    case 'completed':
      return {
        issueType: 'application',
        severity: 'info',
        event: `update.rollout.${action}`,
        title: action === 'completed' ? `Update ${rollout.updateId} now serves every device on ${where}` : `Update rollout at ${rollout.percent} % on ${where}`,
        text: `Gates held: ${verdict.summary}.`,
        details,
      };
    default:
      return undefined;
  }
}
