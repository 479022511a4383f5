/**
 * Benchmark 3, restore: `shipshape db restore` (the real CLI, its own process, the whole
 * runbook procedure over the application's database) of a backup of a ≈1 GB database,
 * with `--jobs 1` and with the machine's core count, against a hand-run `pg_restore` of the
 * same dump file with the same job counts, interleaved round by round.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ShipError } from '../src/errors.ts';
import { createBenchDatabase } from './lib/database.ts';
import { cliEntry } from './lib/paths.ts';
import { runMeasured } from './lib/processes.ts';
import { seed } from './lib/seed.ts';
import { formatNumber, formatRatio, formatSpread, spread } from './lib/stats.ts';
import type { BenchmarkContext, BenchmarkReport, MeasurableBenchmark } from './lib/types.ts';

interface Plan {
  readonly tasks: number;
  readonly repeats: number;
  /** `all`: 1 and the core count; `one`: --jobs 1 only (quick). */
  readonly jobs: 'all' | 'one';
}

// ~215 bytes of database per task (see bench/backup.ts): about 1 GB.
const FULL: Plan = { tasks: 4_700_000, repeats: 3, jobs: 'all' };
const QUICK: Plan = { tasks: 10_000, repeats: 1, jobs: 'one' };

type Tool = 'shipshape' | 'pg_restore';

interface Target {
  readonly tool: Tool;
  readonly jobs: number;
}

interface Run extends Target {
  readonly seconds: number;
  /** Shipshape only: step id → seconds, from the CLI's JSON report. */
  readonly steps: Record<string, number>;
  readonly procedureSeconds: number | undefined;
}

export const benchmark: MeasurableBenchmark = {
  name: 'restore',
  order: 3,
  title: 'Restore',
  description:
    '`shipshape db restore` (the real CLI, the whole runbook procedure over the application database: maintenance, download, safety backup, ' +
    'parking the database, pg_restore, verification, migrations, erasure ledger) of a backup of a ≈1 GB database, with `--jobs 1` and with the ' +
    'machine\'s core count, against a hand-run `pg_restore` of the same dump file with the same job counts.',
  run: runRestoreBenchmark,
};

async function runRestoreBenchmark(context: BenchmarkContext): Promise<BenchmarkReport> {
  const plan = context.quick ? QUICK : FULL;
  const workDir = await mkdtemp(path.join(tmpdir(), 'shipshape-bench-restore-'));
  const database = await createBenchDatabase(context.adminUrl, 'restore');
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

    const cores = context.machine.cores;
    const targets: Target[] = [1, ...(cores > 1 && plan.jobs === 'all' ? [cores] : [])].flatMap((jobs) => [
      { tool: 'shipshape' as const, jobs },
      { tool: 'pg_restore' as const, jobs },
    ]);
    const runOnce = async (target: Target): Promise<Run> => {
      if (target.tool === 'shipshape') {
        const result = await runMeasured(
          process.execPath,
          [cliEntry, 'db', 'restore', backupId, '--jobs', String(target.jobs), '--yes', '--yes-irreversible', '--approved-by', 'bench-approver', '--json'],
          env,
        );
        if (result.code !== 0) throw new ShipError('SHIP_ERR_STEP_FAILED', `shipshape db restore exited with ${result.code}:\n${result.stderr.slice(-3_000)}`);
        const report = parseReport(result.stdout);
        return { ...target, seconds: result.seconds, steps: report.steps, procedureSeconds: report.seconds };
      }
      const result = await runMeasured('pg_restore', ['--clean', '--if-exists', '--no-owner', '--no-privileges', '--exit-on-error', `--jobs=${target.jobs}`, `--dbname=${database.url}`, dumpFile], {});
      if (result.code !== 0) throw new ShipError('SHIP_ERR_STEP_FAILED', `pg_restore exited with ${result.code}: ${result.stderr.slice(-2_000)}`);
      return { ...target, seconds: result.seconds, steps: {}, procedureSeconds: undefined };
    };

    // Warm-up: the dump file and the database into the page cache, Node's caches for the CLI.
    const warmUp = context.quick ? targets.filter((target) => target.tool === 'pg_restore').slice(0, 1) : targets.slice(0, 2);
    for (const target of warmUp) await runOnce(target);
    const runs: Run[] = [];
    for (let round = 0; round < plan.repeats; round += 1) {
      const order = targets.map((_, index) => targets[(index + round) % targets.length]!);
      for (const target of order) runs.push(await runOnce(target));
      context.progress(`restore: round ${round + 1}/${plan.repeats} done`);
    }
    return report(plan, runs, targets, databaseBytes, backupId);
  } finally {
    await database.drop();
    await rm(workDir, { recursive: true, force: true });
  }
}

function parseReport(json: string): { seconds: number | undefined; steps: Record<string, number> } {
  const steps: Record<string, number> = {};
  try {
    const report: unknown = JSON.parse(json);
    if (typeof report !== 'object' || report === null) return { seconds: undefined, steps };
    if ('steps' in report && Array.isArray(report.steps)) {
      for (const step of report.steps) {
        if (typeof step === 'object' && step !== null && 'id' in step && typeof step.id === 'string' && 'durationMs' in step && typeof step.durationMs === 'number') {
          steps[step.id] = step.durationMs / 1000;
        }
      }
    }
    const seconds = 'durationMs' in report && typeof report.durationMs === 'number' ? report.durationMs / 1000 : undefined;
    return { seconds, steps };
  } catch {
    return { seconds: undefined, steps };
  }
}

function report(plan: Plan, runs: readonly Run[], targets: readonly Target[], databaseBytes: number, backupId: string): BenchmarkReport {
  const rows: string[][] = [];
  const notes: string[] = [];
  const summary: string[] = [];
  const of = (target: Target) => runs.filter((run) => run.tool === target.tool && run.jobs === target.jobs);
  for (const target of targets) {
    const list = of(target);
    const stepMedian = (id: string) => spread(list.map((run) => run.steps[id]).filter((value): value is number => value !== undefined)).median;
    rows.push([
      target.tool === 'shipshape' ? '`shipshape db restore`' : 'hand-run `pg_restore`',
      String(target.jobs),
      formatSpread(spread(list.map((run) => run.seconds))),
      target.tool === 'shipshape' ? formatNumber(spread(list.map((run) => run.procedureSeconds ?? Number.NaN)).median) : '–',
      target.tool === 'shipshape' ? formatNumber(stepMedian('safety-backup')) : '–',
      target.tool === 'shipshape' ? formatNumber(stepMedian('restore')) : formatSpread(spread(list.map((run) => run.seconds))),
    ]);
  }
  for (const jobs of [...new Set(targets.map((target) => target.jobs))]) {
    const ours = of({ tool: 'shipshape', jobs });
    const theirs = of({ tool: 'pg_restore', jobs });
    const ratio = spread(ours.map((run, index) => run.seconds / (theirs[index]?.seconds ?? Number.NaN)).filter(Number.isFinite));
    const stepRatio = spread(ours.map((run, index) => (run.steps.restore ?? Number.NaN) / (theirs[index]?.seconds ?? Number.NaN)).filter(Number.isFinite));
    summary.push(`--jobs ${jobs}: ${ratio.median.toFixed(2)}× the time of pg_restore alone (its pg_restore step ${stepRatio.median.toFixed(2)}×).`);
    notes.push(
      `--jobs ${jobs}: \`shipshape db restore\` takes ${formatRatio(ratio)} times as long as \`pg_restore\` alone; its own pg_restore step takes ${formatRatio(stepRatio)} times as long (per round, median (min–max)).`,
    );
  }
  const speedup = (tool: Tool) => {
    const one = spread(of({ tool, jobs: 1 }).map((run) => run.seconds)).median;
    const many = targets.find((target) => target.jobs > 1);
    return many ? one / spread(of({ tool, jobs: many.jobs }).map((run) => run.seconds)).median : Number.NaN;
  };
  if (Number.isFinite(speedup('pg_restore'))) {
    notes.push(`More jobs: pg_restore alone goes ${formatNumber(speedup('pg_restore'))}× as fast, \`shipshape db restore\` ${formatNumber(speedup('shipshape'))}× (medians; a schema dominated by one big table gains little).`);
  }
  notes.push(
    'The restore replaces the application database, so everything an operator waits for is in its time: maintenance on, fetching the dump from storage, a verified safety backup of the current state, ' +
      'parking the database under another name, pg_restore, row-count and newest-row checks, migrations, re-applying the erasure ledger, renaming back, maintenance off. ' +
      'The hand-run pg_restore does only the load, over the same database with `--clean --if-exists`.',
  );
  return {
    size: `a ${formatNumber(databaseBytes / 1e6)} MB database (${plan.tasks.toLocaleString('en-US')} tasks), backup ${backupId}; ${plan.repeats} round(s) after a warm-up`,
    sections: [
      {
        heading: 'Wall time',
        intro:
          'Seconds: median (min–max) over the rounds, process start to exit. For Shipshape, the procedure\'s own duration and its two biggest steps come from the CLI\'s JSON report (medians).',
        table: { columns: ['Restore', 'Jobs', 'Seconds', 'Procedure, s', 'Safety backup, s', 'pg_restore, s'], rows },
      },
      { heading: 'Findings and caveats', notes },
    ],
    commands: [
      'DATABASE_URL=<bench database> BACKUP_STORAGE_URL=file://<dir> SHIPSHAPE_ALLOW_INLINE_APPROVAL=true LOG_LEVEL=warn npx shipshape db backup --json   # once, untimed',
      'SHIPSHAPE_ALLOW_INLINE_APPROVAL=true … npx shipshape db restore <backup> --jobs <1|cores> --yes --yes-irreversible --approved-by bench-approver --json',
      'pg_restore --clean --if-exists --no-owner --no-privileges --exit-on-error --jobs=<1|cores> --dbname=<bench database> <dir>/<backup>/dump',
    ],
    measurements: runs.length,
    summary,
  };
}
