/**
 * Recurring schedules, stored in `schedules` (migration 0005): what `shipshape schedule
 * list|add|remove|pause|resume` changes and what every worker's tick reads.
 *
 * Each row keeps its next occurrence. A worker's tick claims due rows with FOR UPDATE SKIP
 * LOCKED, enqueues their jobs and moves `next_occurrence_at` on in the same transaction
 * (`planTick` decides what), so each occurrence is enqueued exactly once however many
 * instances tick. Occurrences missed while every instance was down collapse into one run,
 * which happens only if it is no later than the schedule's `max_lateness_ms`.
 *
 * The built-in schedules take their recurrence from configuration (BACKUP_SCHEDULE,
 * MAINTENANCE_WINDOW) and follow it when it changes. The daily backup starts on (a default
 * install backs itself up; `shipshape schedule pause daily-backup` opts out); the maintenance
 * window starts paused, since it takes the app down. They can be paused and resumed, not removed.
 */
import type { Config } from '../config/index.ts';
import { formatDurationMs } from '../config/duration.ts';
import { withTransaction, type Pool, type PoolClient, type Queryable } from '../db/pool.ts';
import { firstRow } from '../db/rows.ts';
import { ShipError } from '../errors.ts';
import type { JsonObject } from '../ops/engine/types.ts';
import { formatRecurrence, nextOccurrence, parseRecurrence } from '../time/recurrence.ts';
import { isScheduleTask, taskDefinitions, type ScheduleTask } from './tasks.ts';
import { checkTimeZone } from '../time/zoned-time.ts';

export interface ScheduleSpec {
  readonly name: string;
  readonly task: ScheduleTask;
  /** A recurrence phrase; stored in its canonical form. */
  readonly recurrence: string;
  readonly timeZone: string;
  /** The notice phase runs this long before each occurrence (tasks with a notice phase only). */
  readonly noticeMs: number | null;
  readonly maxLatenessMs: number;
  readonly params: JsonObject;
}

export interface Schedule extends Omit<ScheduleSpec, 'task'> {
  /** A task of `tasks.ts`, or one this version does not know (the runner then records that it skipped it). */
  readonly task: string;
  readonly isDefault: boolean;
  readonly paused: boolean;
  readonly nextOccurrenceAt: Date | null;
  readonly noticeEnqueuedFor: Date | null;
  readonly lastOccurrenceAt: Date | null;
  readonly lastEnqueuedAt: Date | null;
  readonly lastOutcome: string | null;
  /** Whether the last run succeeded; null before the first. */
  readonly lastOutcomeOk: boolean | null;
  readonly lastOutcomeAt: Date | null;
  readonly updatedAt: Date;
  readonly updatedBy: string;
}

interface Row {
  name: string;
  task: string;
  recurrence: string;
  time_zone: string;
  notice_ms: number | null;
  max_lateness_ms: number;
  params: JsonObject;
  is_default: boolean;
  paused: boolean;
  next_occurrence_at: Date | null;
  notice_enqueued_for: Date | null;
  last_occurrence_at: Date | null;
  last_enqueued_at: Date | null;
  last_outcome: string | null;
  last_outcome_ok: boolean | null;
  last_outcome_at: Date | null;
  created_at: Date;
  updated_at: Date;
  updated_by: string;
}

const COLUMNS =
  'name, task, recurrence, time_zone, notice_ms, max_lateness_ms, params, is_default, paused, next_occurrence_at, notice_enqueued_for, last_occurrence_at, last_enqueued_at, last_outcome, last_outcome_ok, last_outcome_at, created_at, updated_at, updated_by';
const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

export const DEFAULT_BACKUP_SCHEDULE = 'daily-backup';
export const DEFAULT_MAINTENANCE_SCHEDULE = 'maintenance-window';

/** A built-in schedule: its spec, and whether it is on from the start. */
export interface DefaultSchedule extends ScheduleSpec {
  readonly startsPaused: boolean;
}

/** The built-in schedules as configuration describes them. */
export function defaultSchedules(config: Config): DefaultSchedule[] {
  return [
    {
      name: DEFAULT_BACKUP_SCHEDULE,
      startsPaused: false,
      task: 'backup',
      recurrence: formatRecurrence(parseRecurrence(config.scheduler.backup.recurrence)),
      timeZone: config.scheduler.backup.timeZone,
      noticeMs: null,
      maxLatenessMs: taskDefinitions.backup.defaultMaxLatenessMs,
      params: {},
    },
    {
      name: DEFAULT_MAINTENANCE_SCHEDULE,
      startsPaused: true,
      task: 'maintenance',
      recurrence: formatRecurrence(parseRecurrence(config.maintenance.window)),
      timeZone: config.maintenance.timeZone,
      noticeMs: config.maintenance.noticeMs,
      maxLatenessMs: taskDefinitions.maintenance.defaultMaxLatenessMs,
      params: {},
    },
  ];
}

/**
 * The first occurrence to aim for when a schedule starts (or its recurrence changes): the first
 * after `now`, or for a schedule with a notice phase the first at least `noticeMs` away, so
 * users always get their full notice.
 */
export function firstOccurrence(spec: Pick<ScheduleSpec, 'recurrence' | 'timeZone' | 'noticeMs'>, now: Date): Date {
  return nextOccurrence(parseRecurrence(spec.recurrence), spec.timeZone, new Date(now.getTime() + (spec.noticeMs ?? 0)));
}

/**
 * Creates the built-in schedules if missing (the daily backup on, the maintenance window
 * paused), and brings them in line with configuration.
 */
/** A schedule's own columns, in the order both INSERTs list them ($1–$7). */
function specValues(spec: ScheduleSpec): unknown[] {
  return [spec.name, spec.task, spec.recurrence, spec.timeZone, spec.noticeMs, spec.maxLatenessMs, JSON.stringify(spec.params)];
}

export async function ensureDefaultSchedules(pool: Pool, config: Config, actor: string): Promise<void> {
  for (const spec of defaultSchedules(config)) {
    await withTransaction(pool, async (client) => {
      const { rows: clock } = await client.query<{ now: Date }>('SELECT now() AS now');
      const now = clock[0]!.now;
      await client.query(
        `INSERT INTO schedules (name, task, recurrence, time_zone, notice_ms, max_lateness_ms, params, is_default, paused, next_occurrence_at, created_by, updated_by)
         VALUES ($1::text, $2::text, $3::text, $4::text, $5::bigint, $6::bigint, $7::jsonb, true, $8::boolean, $9::timestamptz, $10::text, $10::text)
         ON CONFLICT (name) DO NOTHING`,
        [...specValues(spec), spec.startsPaused, spec.startsPaused ? null : firstOccurrence(spec, now), actor],
      );
      const { rows } = await client.query<Row>(`SELECT ${COLUMNS} FROM schedules WHERE name = $1::text FOR UPDATE`, [spec.name]);
      const row = rows[0];
      if (!row) return;
      // Versions before 0.2 created every built-in paused: one nobody has paused or resumed
      // since (updated_at is still its creation time) gets this version's default.
      const untouchedOldDefault = row.paused && !spec.startsPaused && row.updated_at.getTime() === row.created_at.getTime();
      const same =
        row.task === spec.task &&
        row.recurrence === spec.recurrence &&
        row.time_zone === spec.timeZone &&
        Number(row.notice_ms ?? 0) === (spec.noticeMs ?? 0) &&
        row.is_default;
      if (same && !untouchedOldDefault) return;
      const paused = row.paused && !untouchedOldDefault;
      const next = paused ? null : firstOccurrence(spec, now);
      await client.query(
        `UPDATE schedules SET task = $2::text, recurrence = $3::text, time_zone = $4::text, notice_ms = $5::bigint, is_default = true,
                paused = $8::boolean, next_occurrence_at = $6::timestamptz, notice_enqueued_for = NULL, updated_at = now(), updated_by = $7::text
          WHERE name = $1::text`,
        [spec.name, spec.task, spec.recurrence, spec.timeZone, spec.noticeMs, next, actor, paused],
      );
    });
  }
}

export async function listSchedules(db: Queryable): Promise<Schedule[]> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM schedules ORDER BY is_default DESC, name`);
  return rows.map(toSchedule);
}

export async function getSchedule(db: Queryable, name: string): Promise<Schedule> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM schedules WHERE name = $1::text`, [name]);
  const row = rows[0];
  if (!row) throw new ShipError('SHIP_ERR_NOT_FOUND', `No schedule named "${name.slice(0, 64)}". \`shipshape schedule list\` shows them.`);
  return toSchedule(row);
}

/** Checks and normalises a new schedule; throws SHIP_ERR_VALIDATION naming what is wrong. */
export function validateSpec(input: {
  name: string;
  task: string;
  recurrence: string;
  timeZone: string;
  noticeMs?: number | undefined;
  maxLatenessMs?: number | undefined;
  params?: JsonObject | undefined;
}): ScheduleSpec {
  if (!NAME_PATTERN.test(input.name))
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `"${input.name.slice(0, 64)}" is not a schedule name: use lowercase letters, digits and dashes, e.g. nightly-backup.`,
    );
  if (!isScheduleTask(input.task))
    throw new ShipError('SHIP_ERR_VALIDATION', `"${input.task.slice(0, 40)}" is not a task; the tasks are ${Object.keys(taskDefinitions).join(', ')}.`);
  const definition = taskDefinitions[input.task];
  const recurrence = formatRecurrence(parseRecurrence(input.recurrence));
  const timeZone = checkTimeZone(input.timeZone);
  if (input.noticeMs !== undefined && !definition.hasNotice)
    throw new ShipError('SHIP_ERR_VALIDATION', `The ${input.task} task has no notice phase, so --notice does not apply.`);
  const maxLatenessMs = input.maxLatenessMs ?? definition.defaultMaxLatenessMs;
  if (!(maxLatenessMs > 0)) throw new ShipError('SHIP_ERR_VALIDATION', 'The lateness limit must be longer than 0s.');
  return {
    name: input.name,
    task: input.task,
    recurrence,
    timeZone,
    noticeMs: definition.hasNotice ? (input.noticeMs ?? null) : null,
    maxLatenessMs,
    params: input.params ?? {},
  };
}

/** Adds a schedule, paused unless `start` (then its first occurrence is computed now). */
export async function addSchedule(
  db: Queryable,
  spec: ScheduleSpec,
  options: { actor: string; start: boolean; reservedNames: readonly string[] },
): Promise<Schedule> {
  if (options.reservedNames.includes(spec.name)) {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `"${spec.name}" is a built-in schedule: change its time in configuration (BACKUP_SCHEDULE, MAINTENANCE_WINDOW and their time zones) and use \`shipshape schedule resume ${spec.name}\`.`,
    );
  }
  const { rows: clock } = await db.query<{ now: Date }>('SELECT now() AS now');
  const next = options.start ? firstOccurrence(spec, clock[0]!.now) : null;
  try {
    const { rows } = await db.query<Row>(
      `INSERT INTO schedules (name, task, recurrence, time_zone, notice_ms, max_lateness_ms, params, paused, next_occurrence_at, created_by, updated_by)
       VALUES ($1::text, $2::text, $3::text, $4::text, $5::bigint, $6::bigint, $7::jsonb, $8::boolean, $9::timestamptz, $10::text, $10::text)
       RETURNING ${COLUMNS}`,
      [...specValues(spec), !options.start, next, options.actor],
    );
    return toSchedule(firstRow(rows));
  } catch (error) {
    if ((error as { code?: string }).code === '23505') {
      throw new ShipError(
        'SHIP_ERR_VALIDATION',
        `A schedule named "${spec.name}" exists already. Remove it first (\`shipshape schedule remove ${spec.name}\`) or pick another name.`,
      );
    }
    throw error;
  }
}

export async function removeSchedule(db: Queryable, name: string): Promise<Schedule> {
  const existing = await getSchedule(db, name);
  if (existing.isDefault)
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `"${name}" is a built-in schedule and cannot be removed; pause it instead: \`shipshape schedule pause ${name}\`.`,
    );
  await db.query('DELETE FROM schedules WHERE name = $1::text', [name]);
  return existing;
}

export async function pauseSchedule(db: Queryable, name: string, actor: string): Promise<Schedule> {
  const { rows } = await db.query<Row>(
    `UPDATE schedules SET paused = true, next_occurrence_at = NULL, notice_enqueued_for = NULL, updated_at = now(), updated_by = $2::text
      WHERE name = $1::text RETURNING ${COLUMNS}`,
    [name, actor],
  );
  if (!rows[0]) return getSchedule(db, name);
  return toSchedule(rows[0]);
}

/** Starts (or restarts) a schedule from its next occurrence; a running one keeps its place. */
export async function resumeSchedule(pool: Pool, name: string, actor: string): Promise<Schedule> {
  return withTransaction(pool, async (client) => {
    const { rows } = await client.query<Row>(`SELECT ${COLUMNS} FROM schedules WHERE name = $1::text FOR UPDATE`, [name]);
    const row = rows[0];
    if (!row) return getSchedule(client, name);
    if (!row.paused) return toSchedule(row);
    const { rows: clock } = await client.query<{ now: Date }>('SELECT now() AS now');
    const schedule = toSchedule(row);
    const next = firstOccurrence(schedule, clock[0]!.now);
    const { rows: updated } = await client.query<Row>(
      `UPDATE schedules SET paused = false, next_occurrence_at = $2::timestamptz, notice_enqueued_for = NULL, updated_at = now(), updated_by = $3::text
        WHERE name = $1::text RETURNING ${COLUMNS}`,
      [name, next, actor],
    );
    return toSchedule(updated[0]!);
  });
}

/** A job a tick enqueues for a schedule. */
export interface ScheduledRun {
  readonly schedule: string;
  readonly task: string;
  readonly phase: 'notice' | 'due';
  /** The occurrence this is for (for a notice: the window it announces), ISO 8601. */
  readonly occurrence: string;
  readonly params: JsonObject;
}

export interface TickPlan {
  readonly runs: ScheduledRun[];
  readonly nextOccurrenceAt: Date;
  readonly noticeEnqueuedFor: Date | null;
  /** An occurrence that was missed by more than the lateness limit and is skipped. */
  readonly skipped?: { readonly occurrence: Date; readonly reason: string };
}

/** What a tick does with a due schedule at `now`: which runs to enqueue and where it goes next. */
export function planTick(schedule: Schedule, now: Date): TickPlan {
  const occurrence = schedule.nextOccurrenceAt;
  if (occurrence === null) throw new ShipError('SHIP_ERR_INTERNAL', `Schedule ${schedule.name} is due but has no next occurrence.`);
  const runs: ScheduledRun[] = [];
  const base = { schedule: schedule.name, task: schedule.task, occurrence: occurrence.toISOString(), params: schedule.params };
  let noticeEnqueuedFor = schedule.noticeEnqueuedFor;
  const noticeDue = schedule.noticeMs !== null && occurrence.getTime() - schedule.noticeMs <= now.getTime();
  // Once the occurrence itself has come, a notice is pointless; the due run decides what to do.
  if (noticeDue && occurrence.getTime() > now.getTime() && noticeEnqueuedFor?.getTime() !== occurrence.getTime()) {
    runs.push({ ...base, phase: 'notice' });
    noticeEnqueuedFor = occurrence;
  }
  if (occurrence.getTime() > now.getTime()) return { runs, nextOccurrenceAt: occurrence, noticeEnqueuedFor };

  const lateness = now.getTime() - occurrence.getTime();
  const next = nextOccurrence(parseRecurrence(schedule.recurrence), schedule.timeZone, now);
  if (lateness <= schedule.maxLatenessMs) {
    runs.push({ ...base, phase: 'due' });
    return { runs, nextOccurrenceAt: next, noticeEnqueuedFor };
  }
  return {
    runs,
    nextOccurrenceAt: next,
    noticeEnqueuedFor,
    skipped: {
      occurrence,
      reason: `missed by ${formatDurationMs(Math.round(lateness / 1_000) * 1_000)} (no worker was running), more than its limit of ${formatDurationMs(schedule.maxLatenessMs)}`,
    },
  };
}

/** Due schedules (an occurrence or a notice has come), held for the caller's transaction. */
export async function claimDueSchedules(client: PoolClient): Promise<Schedule[]> {
  const { rows } = await client.query<Row>(
    `SELECT ${COLUMNS} FROM schedules
      WHERE NOT paused AND next_occurrence_at IS NOT NULL
        AND (next_occurrence_at <= now()
             OR (notice_ms IS NOT NULL AND next_occurrence_at - notice_ms * interval '1 millisecond' <= now()
                 AND notice_enqueued_for IS DISTINCT FROM next_occurrence_at))
      ORDER BY next_occurrence_at
      FOR UPDATE SKIP LOCKED`,
  );
  return rows.map(toSchedule);
}

/** Records what a tick did with a schedule (inside its transaction). */
export async function recordTick(client: PoolClient, name: string, plan: TickPlan): Promise<void> {
  const due = plan.runs.find((run) => run.phase === 'due');
  await client.query(
    `UPDATE schedules SET next_occurrence_at = $2::timestamptz, notice_enqueued_for = $3::timestamptz,
            last_occurrence_at = CASE WHEN $4::timestamptz IS NOT NULL THEN $4::timestamptz ELSE last_occurrence_at END,
            last_enqueued_at = CASE WHEN $5::boolean THEN now() ELSE last_enqueued_at END,
            last_outcome = coalesce($6::text, last_outcome), last_outcome_at = CASE WHEN $6::text IS NOT NULL THEN now() ELSE last_outcome_at END,
            last_outcome_ok = CASE WHEN $7::boolean THEN false ELSE last_outcome_ok END
      WHERE name = $1::text`,
    [
      name,
      plan.nextOccurrenceAt,
      plan.noticeEnqueuedFor,
      due?.occurrence ?? plan.skipped?.occurrence ?? null,
      plan.runs.length > 0,
      plan.skipped ? `skipped ${plan.skipped.occurrence.toISOString()}: ${plan.skipped.reason}` : due ? `queued ${due.occurrence}` : null,
      // A skipped occurrence did not do its work: it counts as failed until a later run succeeds.
      plan.skipped !== undefined,
    ],
  );
}

/** What the job that ran an occurrence reported, for `schedule list` and the watchdog's failed-jobs alert. */
export async function recordOutcome(db: Queryable, name: string, outcome: string, ok: boolean): Promise<void> {
  await db.query('UPDATE schedules SET last_outcome = $2::text, last_outcome_ok = $3::boolean, last_outcome_at = now() WHERE name = $1::text', [
    name,
    outcome.slice(0, 1000),
    ok,
  ]);
}

function toSchedule(row: Row): Schedule {
  return {
    name: row.name,
    task: row.task,
    recurrence: row.recurrence,
    timeZone: row.time_zone,
    noticeMs: row.notice_ms === null ? null : Number(row.notice_ms),
    maxLatenessMs: Number(row.max_lateness_ms),
    params: row.params,
    isDefault: row.is_default,
    paused: row.paused,
    nextOccurrenceAt: row.next_occurrence_at,
    noticeEnqueuedFor: row.notice_enqueued_for,
    lastOccurrenceAt: row.last_occurrence_at,
    lastEnqueuedAt: row.last_enqueued_at,
    lastOutcome: row.last_outcome,
    lastOutcomeOk: row.last_outcome_ok,
    lastOutcomeAt: row.last_outcome_at,
    updatedAt: row.updated_at,
    updatedBy: row.updated_by,
  };
}
