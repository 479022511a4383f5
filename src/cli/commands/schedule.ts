/**
 * `shipshape schedule list|add|remove|pause|resume`: the recurring schedules the workers run.
 * The built-ins exist from the start: `daily-backup` (backup, then retention prune) on,
 * `maintenance-window` (announce 72 h before, then the maintenance run) paused.
 */
import type { Command } from 'commander';
import { formatDurationMs, parseDuration } from '../../config/duration.ts';
import type { Pool } from '../../db/pool.ts';
import { recordAudit } from '../../domain/audit.ts';
import { ShipError } from '../../errors.ts';
import { upcomingOccurrences, parseRecurrence } from '../../time/recurrence.ts';
import {
  addSchedule,
  defaultSchedules,
  ensureDefaultSchedules,
  listSchedules,
  pauseSchedule,
  removeSchedule,
  resumeSchedule,
  validateSpec,
  type Schedule,
} from '../../scheduler/schedules.ts';
import { taskDefinitions } from '../../scheduler/tasks.ts';
import { shortInstant } from '../../time/zoned-time.ts';
import { cliContext, withDatabase, type CliContext } from '../context.ts';
import { emit, table } from '../output.ts';

interface AddOptions {
  task: string;
  every: string;
  tz: string;
  notice?: string;
  late?: string;
  paused: boolean;
  json: boolean;
}

export function registerSchedule(program: Command): void {
  const schedule = program.command('schedule').description('recurring schedules run by the workers (daily backup, monthly maintenance, …)');

  schedule
    .command('list')
    .description('every schedule: what it runs, when (in its time zone), whether it is on, and its last outcome')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { json: boolean }) => {
      const context = cliContext();
      const schedules = await withSchedules(context, async (pool) => listSchedules(pool));
      emit(options, { schedules }, ({ schedules: rows }) => describeList(rows));
    });

  schedule
    .command('add <name>')
    .description(
      `add a schedule (tasks: ${Object.values(taskDefinitions)
        .map((task) => `${task.task} — ${task.description}`)
        .join('; ')})`,
    )
    .requiredOption('--task <task>', `what it runs: ${Object.keys(taskDefinitions).join(' or ')}`)
    .requiredOption('--every <when>', 'e.g. "every day at 03:00", "every sunday at 02:00", "first sunday of every month at 02:00", "every 6 hours"')
    .option('--tz <zone>', 'IANA time zone the times are in', 'UTC')
    .option('--notice <duration>', 'run the notice phase this long before each occurrence (maintenance task), e.g. 72h')
    .option('--late <duration>', 'run an occurrence missed while no worker ran only if at most this late, e.g. 1h')
    .option('--paused', 'add it paused (start it with `schedule resume`)', false)
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (name: string, options: AddOptions) => {
      const context = cliContext();
      const spec = validateSpec({
        name,
        task: options.task,
        recurrence: options.every,
        timeZone: options.tz,
        noticeMs: options.notice === undefined ? undefined : durationOption('--notice', options.notice),
        maxLatenessMs: options.late === undefined ? undefined : durationOption('--late', options.late),
      });
      const added = await withSchedules(context, async (pool) => {
        const created = await addSchedule(pool, spec, {
          actor: actor(context),
          start: !options.paused,
          reservedNames: defaultSchedules(context.config).map((s) => s.name),
        });
        await recordAudit(pool, {
          actor: actor(context),
          action: 'schedule.added',
          details: { name, task: spec.task, recurrence: spec.recurrence, timeZone: spec.timeZone },
        });
        return created;
      });
      emit(options, { schedule: added }, ({ schedule: row }) => `Added ${row.name}: ${describeOne(row)}`);
    });

  schedule
    .command('remove <name>')
    .description('remove a schedule you added (built-in ones are paused instead)')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (name: string, options: { json: boolean }) => {
      const context = cliContext();
      const removed = await withSchedules(context, async (pool) => {
        const row = await removeSchedule(pool, name);
        await recordAudit(pool, { actor: actor(context), action: 'schedule.removed', details: { name } });
        return row;
      });
      emit(options, { removed: removed.name }, () => `Removed ${removed.name}. Jobs it already queued still run.`);
    });

  schedule
    .command('pause <name>')
    .description('stop a schedule (nothing further is queued; a run in progress finishes)')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (name: string, options: { json: boolean }) => {
      const context = cliContext();
      const paused = await withSchedules(context, async (pool) => {
        const row = await pauseSchedule(pool, name, actor(context));
        await recordAudit(pool, { actor: actor(context), action: 'schedule.paused', details: { name } });
        return row;
      });
      emit(options, { schedule: paused }, ({ schedule: row }) => `Paused ${row.name}.`);
    });

  schedule
    .command('resume <name>')
    .description('start a schedule from its next occurrence (with a notice phase: the first one at least the notice away)')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (name: string, options: { json: boolean }) => {
      const context = cliContext();
      const resumed = await withSchedules(context, async (pool) => {
        const row = await resumeSchedule(pool, name, actor(context));
        await recordAudit(pool, { actor: actor(context), action: 'schedule.resumed', details: { name } });
        return row;
      });
      emit(options, { schedule: resumed }, ({ schedule: row }) =>
        [`Resumed ${row.name}: ${describeOne(row)}`, 'Workers run it: `shipshape serve` (unless --no-workers) or `shipshape worker` must be running.'].join(
          '\n',
        ),
      );
    });
}

async function withSchedules<T>(context: CliContext, fn: (pool: Pool) => Promise<T>): Promise<T> {
  return withDatabase(context, async (database) => {
    await ensureDefaultSchedules(database.pool, context.config, actor(context));
    return fn(database.pool);
  });
}

function actor(context: CliContext): string {
  return `operator:${context.config.operator}`;
}

function durationOption(flag: string, value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) throw new ShipError('SHIP_ERR_VALIDATION', `${flag}: "${value}" is not a duration; write it like 30m, 1h or 72h.`);
  return ms;
}

function describeOne(row: Schedule): string {
  const notice = row.noticeMs === null ? '' : `, notice ${noticeText(row.noticeMs)} before`;
  const next = row.nextOccurrenceAt === null ? 'paused' : `next ${shortInstant(row.nextOccurrenceAt, row.timeZone)} (${row.nextOccurrenceAt.toISOString()})`;
  return `${row.task}, ${row.recurrence} ${row.timeZone}${notice}; ${next}`;
}

/** "72h" rather than "3d": the runbook counts the notice in hours. */
function noticeText(ms: number): string {
  return ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : formatDurationMs(ms);
}

function describeList(rows: readonly Schedule[]): string {
  if (rows.length === 0) return 'No schedules.';
  const body = table(
    ['name', 'task', 'when', 'time zone', 'state', 'next', 'last outcome'],
    rows.map((row) => [
      `${row.name}${row.isDefault ? ' *' : ''}`,
      row.task,
      `${row.recurrence}${row.noticeMs === null ? '' : ` (notice ${noticeText(row.noticeMs)})`}`,
      row.timeZone,
      row.paused ? 'paused' : 'on',
      row.nextOccurrenceAt === null ? '-' : shortInstant(row.nextOccurrenceAt, row.timeZone),
      row.lastOutcome === null ? '-' : `${row.lastOutcomeOk === false ? 'FAILED ' : ''}${row.lastOutcome.slice(0, 80)}`,
    ]),
  );
  const upcoming = rows.flatMap((row) => {
    if (row.paused || row.nextOccurrenceAt === null) return [];
    const later = upcomingOccurrences(parseRecurrence(row.recurrence), row.timeZone, row.nextOccurrenceAt, 2);
    return [`  ${row.name}: then ${later.map((at) => shortInstant(at, row.timeZone)).join(', ')}`];
  });
  return [
    body,
    '* built-in, times from configuration: daily-backup is on from the start (opt out: `shipshape schedule pause daily-backup`); maintenance-window starts paused (`shipshape schedule resume maintenance-window`)',
    ...(upcoming.length > 0 ? ['', 'After that:', ...upcoming] : []),
  ].join('\n');
}
