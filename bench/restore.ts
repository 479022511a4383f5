/**
 * Benchmark 3, restore: `shipshape db restore` (the real CLI, its own process, the whole
 * procedure over the application's database: read-only while it restores beside the live
 * database and checks, migrates and reconciles the copy; fully unavailable only for the swap)
 * against the runbook's "Restore Database" run by hand as written (maintenance on, safety
 * pg_dump, terminate connections, `pg_restore --clean --if-exists` in place, the table counts,
 * maintenance off), on the same database and dump, interleaved round by round.
 *
 * For each: seconds read-only (reads served, writes refused), seconds fully unavailable
 * (everything refused), and total. The runbook's procedure is unavailable for all of it.
 * Sizes: --quick (CI) 10,000 tasks; the full run ≈1 GB (4.7 M tasks); BENCH_RESTORE_TASKS=<n>
 * for another size on demand.
 */
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ShipError } from '../src/errors.ts';
import { preRestorePrefix, sideName } from '../src/ops/backups/restore-target.ts';
import { adminQuery, createBenchDatabase } from './lib/database.ts';
import { cliEntry } from './lib/paths.ts';
import { runMeasured } from './lib/processes.ts';
import { seed } from './lib/seed.ts';
import { formatNumber, formatSpread, spread } from './lib/stats.ts';
import type { BenchmarkContext, BenchmarkReport, GoalCheck, MeasurableBenchmark } from './lib/types.ts';

interface Plan {
  readonly tasks: number;
  readonly repeats: number;
}

// ~215 bytes of database per task (see bench/backup.ts): about 1 GB.
// Two rounds, one in each order (ours first, then theirs first): each round restores ≈1 GB twice.
const FULL: Plan = { tasks: Number(process.env.BENCH_RESTORE_TASKS ?? 4_700_000), repeats: Number(process.env.BENCH_RESTORE_ROUNDS ?? 2) };
const QUICK: Plan = { tasks: 10_000, repeats: 1 };

type Tool = 'shipshape' | 'runbook';

interface Run {
  readonly tool: Tool;
  readonly total: number;
  readonly readOnly: number;
  readonly unavailable: number;
  /** The load itself: Shipshape's restore step, the runbook's pg_restore. */
  readonly load: number;
}

/** Issue 13's goals against the runbook's procedure by hand: total wall time, and time fully unavailable. */
const GOAL_TOTAL_RATIO = 0.8;
const GOAL_UNAVAILABLE_RATIO = 0.05;

/** Shipshape's steps while the application is read-only, and while it is fully unavailable. */
const READ_ONLY_STEPS = ['read-only', 'fetch', 'restore', 'verify-tables', 'migrate', 'erasure-ledger'];
const UNAVAILABLE_STEPS = ['maintenance-on', 'swap', 'maintenance-off'];

export const benchmark: MeasurableBenchmark = {
  name: 'restore',
  order: 3,
  title: 'Restore',
  description:
    '`shipshape db restore` (the real CLI: read-only while it restores beside the live database, checks, migrates and reconciles the copy; fully unavailable only for the swap) ' +
    'against the runbook\'s "Restore Database" run by hand as written (maintenance on, safety pg_dump, terminate, `pg_restore --clean --if-exists` in place, table counts, maintenance off), ' +
    'on the same ≈1 GB database and dump: seconds read-only, seconds fully unavailable, total.',
  run: runRestoreBenchmark,
};

async function runRestoreBenchmark(context: BenchmarkContext): Promise<BenchmarkReport> {
  const plan = context.quick ? QUICK : FULL;
  const workDir = await mkdtemp(path.join(tmpdir(), 'shipshape-bench-restore-'));
  const database = await createBenchDatabase(context.adminUrl, 'restore');
  // The restore's side databases; long names are cut from the end of the name, never the run's part.
  const sidePrefixes = [
    preRestorePrefix(database.name),
    sideName(database.name, 'incoming', 'r-00000000-000000-0000').slice(0, -'00000000_000000_0000'.length),
  ];
  const dropKept = async () => {
    const kept = await adminQuery<{ datname: string }>(
      context.adminUrl,
      `SELECT datname FROM pg_database WHERE ${sidePrefixes.map((prefix) => `starts_with(datname, '${prefix}')`).join(' OR ')}`,
    );
    for (const row of kept) await adminQuery(context.adminUrl, `DROP DATABASE IF EXISTS "${row.datname}" WITH (FORCE)`);
  };
  try {
    context.progress(`restore: seeding ${plan.tasks.toLocaleString('en-US')} tasks`);
    await seed(database.pool, { users: Math.ceil(plan.tasks / 100), tasksPerUser: 100 });
    const { rows } = await database.pool.query<{ bytes: number }>('SELECT pg_database_size(current_database()) AS bytes');
    const databaseBytes = rows[0]?.bytes ?? 0;
    // The restore terminates every session on its database; ours must not be among them.
    await database.pool.end();

    const store = path.join(workDir, 'store');
    const env = {
      DATABASE_URL: database.url,
      LOG_LEVEL: 'warn',
      STATE_DIR: path.join(workDir, 'state'),
      BACKUP_STORAGE_URL: `file://${store}`,
      SHIPSHAPE_OPERATOR: 'bench',
      // Restore is critical: a second operator approves. Inline approval keeps the run unattended.
      SHIPSHAPE_ALLOW_INLINE_APPROVAL: 'true',
    };
    context.progress('restore: taking the backup to restore');
    const backup = await runMeasured(process.execPath, [cliEntry, 'db', 'backup', '--json'], env);
    if (backup.code !== 0) throw new ShipError('SHIP_ERR_STEP_FAILED', `shipshape db backup exited with ${backup.code}:\n${backup.stderr.slice(-3_000)}`);
    const backupId = (await readdir(store)).find((entry) => entry.startsWith('b-'));
    if (!backupId) throw new ShipError('SHIP_ERR_INTERNAL', `shipshape db backup succeeded but ${store} holds no backup folder.`);
    const dumpFile = path.join(store, backupId, 'dump');
    const jobs = context.machine.cores;

    const shipshape = async (): Promise<Run> => {
      const result = await runMeasured(
        process.execPath,
        [cliEntry, 'db', 'restore', backupId, '--jobs', String(jobs), '--yes', '--approved-by', 'bench-approver', '--json'],
        env,
      );
      if (result.code !== 0)
        throw new ShipError(
          'SHIP_ERR_STEP_FAILED',
          `shipshape db restore exited with ${result.code}:\n${result.stdout.slice(-3_000)}\n${result.stderr.slice(-3_000)}`,
        );
      const steps = stepSeconds(result.stdout);
      const sum = (ids: readonly string[]) => ids.reduce((total, id) => total + (steps[id] ?? 0), 0);
      // The kept pre-restore copy is 1 GB a round; the bench does what `db prune` would.
      await dropKept();
      return {
        tool: 'shipshape',
        total: result.seconds,
        readOnly: sum(READ_ONLY_STEPS),
        unavailable: sum(UNAVAILABLE_STEPS),
        load: steps.restore ?? Number.NaN,
      };
    };

    // The runbook's steps 1, 5, 7-10 and 12 as written (6, gunzip, does not apply to a custom
    // archive; 11, migrations, has nothing to apply). The app is down from the first to the last.
    const runbook = async (): Promise<Run> => {
      const psql = async (sql: string) => {
        const result = await runMeasured('psql', ['--no-psqlrc', '-v', 'ON_ERROR_STOP=1', '-d', database.url, '-c', sql], {});
        if (result.code !== 0) throw new ShipError('SHIP_ERR_STEP_FAILED', `psql exited with ${result.code}: ${result.stderr.slice(-2_000)}`);
      };
      const adminPsql = async (sql: string) => {
        const result = await runMeasured('psql', ['--no-psqlrc', '-v', 'ON_ERROR_STOP=1', '-d', context.adminUrl, '-c', sql], {});
        if (result.code !== 0) throw new ShipError('SHIP_ERR_STEP_FAILED', `psql exited with ${result.code}: ${result.stderr.slice(-2_000)}`);
      };
      const started = performance.now();
      await psql("UPDATE app_state SET maintenance_enabled = true, maintenance_message = 'Restoring'");
      await copyFile(dumpFile, path.join(workDir, 'restore.dump'));
      const safety = await runMeasured(
        'pg_dump',
        ['--format=custom', `--file=${path.join(workDir, 'pre_restore_backup.dump')}`, `--dbname=${database.url}`],
        {},
      );
      if (safety.code !== 0) throw new ShipError('SHIP_ERR_STEP_FAILED', `pg_dump exited with ${safety.code}: ${safety.stderr.slice(-2_000)}`);
      await adminPsql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${database.name}' AND pid <> pg_backend_pid()`);
      const load = await runMeasured(
        'pg_restore',
        [`--dbname=${database.url}`, '--clean', '--if-exists', '--no-owner', '--no-privileges', `--jobs=${jobs}`, path.join(workDir, 'restore.dump')],
        {},
      );
      if (load.code !== 0) throw new ShipError('SHIP_ERR_STEP_FAILED', `pg_restore exited with ${load.code}: ${load.stderr.slice(-2_000)}`);
      await psql(
        "SELECT 'users' AS table, count(*) FROM users UNION ALL SELECT 'tasks', count(*) FROM tasks UNION ALL SELECT 'sessions', count(*) FROM sessions",
      );
      await psql('UPDATE app_state SET maintenance_enabled = false, maintenance_message = NULL');
      const total = (performance.now() - started) / 1000;
      await rm(path.join(workDir, 'restore.dump'), { force: true });
      await rm(path.join(workDir, 'pre_restore_backup.dump'), { force: true });
      return { tool: 'runbook', total, readOnly: 0, unavailable: total, load: load.seconds };
    };

    // Warm-up: the dump file and the database into the page cache, Node's caches for the CLI.
    await runbook();
    const runs: Run[] = [];
    for (let round = 0; round < plan.repeats; round += 1) {
      const order = round % 2 === 0 ? [shipshape, runbook] : [runbook, shipshape];
      for (const runOnce of order) runs.push(await runOnce());
      context.progress(`restore: round ${round + 1}/${plan.repeats} done`);
    }
    return report(plan, runs, jobs, databaseBytes, backupId);
  } finally {
    await dropKept().catch(() => undefined);
    await database.drop();
    await rm(workDir, { recursive: true, force: true });
  }
}

function stepSeconds(json: string): Record<string, number> {
  const steps: Record<string, number> = {};
  try {
    const report: unknown = JSON.parse(json);
    if (typeof report === 'object' && report !== null && 'steps' in report && Array.isArray(report.steps)) {
      for (const step of report.steps) {
        if (
          typeof step === 'object' &&
          step !== null &&
          'id' in step &&
          typeof step.id === 'string' &&
          'durationMs' in step &&
          typeof step.durationMs === 'number'
        ) {
          steps[step.id] = step.durationMs / 1000;
        }
      }
    }
  } catch {
    // not a report; the run failed and said so on stderr
  }
  return steps;
}

function report(plan: Plan, runs: readonly Run[], jobs: number, databaseBytes: number, backupId: string): BenchmarkReport {
  const of = (tool: Tool) => runs.filter((run) => run.tool === tool);
  const column = (tool: Tool, pick: (run: Run) => number) => formatSpread(spread(of(tool).map(pick)));
  const rows = (['shipshape', 'runbook'] as const).map((tool) => [
    tool === 'shipshape' ? '`shipshape db restore`' : "the runbook's procedure by hand",
    column(tool, (run) => run.readOnly),
    column(tool, (run) => run.unavailable),
    column(tool, (run) => run.total),
    column(tool, (run) => run.load),
  ]);
  const median = (tool: Tool, pick: (run: Run) => number) => spread(of(tool).map(pick)).median;
  const ours = median('shipshape', (run) => run.unavailable);
  const theirs = median('runbook', (run) => run.unavailable);
  const totalRatio = median('shipshape', (run) => run.total) / median('runbook', (run) => run.total);
  const unavailableRatio = ours / theirs;
  const baseline = "the runbook's Restore Database by hand";
  const goals: GoalCheck[] = [
    {
      measure: '`db restore`, total wall time',
      baseline,
      goal: `≤ ${GOAL_TOTAL_RATIO}×`,
      measured: `${totalRatio.toFixed(2)}× (${formatNumber(median('shipshape', (run) => run.total))} s against ${formatNumber(median('runbook', (run) => run.total))} s)`,
      met: totalRatio <= GOAL_TOTAL_RATIO,
    },
    {
      measure: '`db restore`, time fully unavailable',
      baseline,
      goal: `≤ ${GOAL_UNAVAILABLE_RATIO}×`,
      measured: `${unavailableRatio.toFixed(3)}× (${formatNumber(ours)} s against ${formatNumber(theirs)} s)`,
      met: unavailableRatio <= GOAL_UNAVAILABLE_RATIO,
    },
  ];
  const summary = [
    `fully unavailable ${formatNumber(ours)} s with Shipshape (read-only ${formatNumber(median('shipshape', (run) => run.readOnly))} s) against ${formatNumber(theirs)} s by the runbook; total ${formatNumber(median('shipshape', (run) => run.total))} s against ${formatNumber(median('runbook', (run) => run.total))} s.`,
  ];
  const notes = [
    `Fully unavailable: Shipshape ${formatNumber(ours)} s, the runbook's procedure ${formatNumber(theirs)} s (${formatNumber(theirs / ours)}× as long); medians.`,
    "Shipshape's read-only time is the steps read-only … erasure-ledger (download, pg_restore into a new database beside the live one, row-count and newest-row checks, migrations, erasure ledger): reads are served, writes answer 503. " +
      "Its fully unavailable time is maintenance-on, swap (terminate, two renames, reconciling the queue and notification records) and maintenance-off, from the CLI's JSON report.",
    "The runbook's procedure takes the application down from its first step to its last: maintenance on, the download (a local copy here), the safety pg_dump, terminating sessions, pg_restore --clean in place, the counts, maintenance off.",
    "Shipshape keeps the replaced database (the way back is a rename); the bench drops it after each round, as `shipshape db prune` would. The hand-run pg_restore works here only because the bench database never ran pg-boss's workers (its partitioned queue tables cannot be dropped in place).",
  ];
  return {
    size: `a ${formatNumber(databaseBytes / 1e6)} MB database (${plan.tasks.toLocaleString('en-US')} tasks), backup ${backupId}, --jobs ${jobs}; ${plan.repeats} round(s) after a warm-up`,
    sections: [
      {
        heading: 'Availability and wall time',
        intro: 'Seconds: median (min–max) over the rounds.',
        table: { columns: ['Restore', 'Read-only, s', 'Fully unavailable, s', 'Total, s', 'The load itself, s'], rows },
      },
      { heading: 'Findings and caveats', notes },
    ],
    commands: [
      'DATABASE_URL=<bench database> BACKUP_STORAGE_URL=file://<dir> SHIPSHAPE_ALLOW_INLINE_APPROVAL=true LOG_LEVEL=warn npx shipshape db backup --json   # once, untimed',
      'SHIPSHAPE_ALLOW_INLINE_APPROVAL=true … npx shipshape db restore <backup> --jobs <cores> --yes --approved-by bench-approver --json',
      'psql -c "UPDATE app_state SET maintenance_enabled = true …"; cp <dump> restore.dump; pg_dump --format=custom --file=pre_restore_backup.dump; psql -c "SELECT pg_terminate_backend(pid) …"; pg_restore --clean --if-exists --no-owner --no-privileges --jobs=<cores> restore.dump; psql -c "SELECT … count(*) …"; psql -c "UPDATE app_state SET maintenance_enabled = false …"',
    ],
    measurements: runs.length,
    summary,
    goals,
  };
}
