/**
 * Benchmark 9, embedded backup: `shipshape db backup` (the real CLI, its own process) of the
 * embedded database (PGlite under STATE_DIR), against the same dump taken directly with
 * PGlite's tools in a process of its own (bench/lib/pglite-dump.ts: open the data directory,
 * pglite-tools' `pgDump` with the same arguments, write the file). Two databases: an empty one
 * (a STATE_DIR whose database was created but never migrated: the case once reported at 21 s) and a small one, migrated and
 * seeded. Targets are interleaved round by round; ratios per round.
 */
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { v8FlagsFor } from '../src/cli/command-tuning.ts';
import { loadConfig } from '../src/config/index.ts';
import { openDatabase } from '../src/db/index.ts';
import { ShipError } from '../src/errors.ts';
import { createLogger } from '../src/log.ts';
import { prepareSchema } from '../src/runtime/migrations.ts';
import { benchDir, cliEntry } from './lib/paths.ts';
import { runMeasured, type MeasuredRun } from './lib/processes.ts';
import { seed } from './lib/seed.ts';
import { formatNumber, formatRatio, formatTimes, formatSpread, spread } from './lib/stats.ts';
import type { BenchmarkContext, BenchmarkReport, GoalCheck, MeasurableBenchmark } from './lib/types.ts';

/** Issue 13's goal: at most this many times PGlite's own dump of the same data directory. */
const GOAL_RATIO = 2;

const targetNames = ['shipshape', 'pglite-tools', 'pglite-tools-tuned'] as const;
type TargetName = (typeof targetNames)[number];
const targetLabels: Record<TargetName, string> = {
  shipshape: '`shipshape db backup` (embedded, file storage)',
  'pglite-tools': "PGlite's own `pgDump`, directly (Node's defaults)",
  'pglite-tools-tuned': "PGlite's own `pgDump`, directly, with `db backup`'s V8 flags",
};

interface Database {
  readonly label: string;
  /** Users × 100 tasks, after migrating; undefined: a fresh STATE_DIR, never migrated. */
  readonly users: number | undefined;
}

interface Plan {
  readonly databases: readonly Database[];
  readonly repeats: number;
  readonly targets: readonly TargetName[];
}

const FULL: Plan = {
  databases: [
    { label: 'empty', users: undefined },
    { label: 'small (10,000 tasks)', users: 100 },
  ],
  repeats: 5,
  targets: targetNames,
};
// Quick: the empty database only (migrating and seeding one takes longer than the whole quick
// budget allows), one round, no warm-up, and not the slow untuned baseline.
const QUICK: Plan = { databases: [{ label: 'empty', users: undefined }], repeats: 1, targets: ['shipshape', 'pglite-tools-tuned'] };

interface Run {
  readonly target: TargetName;
  readonly database: string;
  readonly seconds: number;
  readonly bytes: number;
  /** Shipshape only: the procedure's own duration from the JSON report. */
  readonly procedureSeconds: number | undefined;
  readonly peakRssBytes: number;
}

export const benchmark: MeasurableBenchmark = {
  name: 'embedded-backup',
  order: 9,
  title: 'Embedded backup',
  description:
    '`shipshape db backup` of the embedded database (PGlite under STATE_DIR; the real CLI in its own process, verification included), ' +
    "against the same dump taken directly with PGlite's tools (pglite-tools' `pgDump` on the same data directory, in its own process). " +
    'An empty database (created, never migrated) and a small migrated, seeded one; wall-time ratio per round.',
  run: runEmbeddedBackupBenchmark,
};

async function runEmbeddedBackupBenchmark(context: BenchmarkContext): Promise<BenchmarkReport> {
  const plan = context.quick ? QUICK : FULL;
  const workDir = await mkdtemp(path.join(tmpdir(), 'shipshape-bench-embedded-backup-'));
  const runs: Run[] = [];
  let sequence = 0;
  try {
    for (const database of plan.databases) {
      const stateDir = path.join(workDir, `state-${database.label.split(' ')[0]}`);
      await prepare(stateDir, database, context);
      const runOnce = async (target: TargetName): Promise<Run> => {
        sequence += 1;
        const store = path.join(workDir, `store-${sequence}`);
        const result =
          target === 'shipshape'
            ? await shipshapeBackup(stateDir, store)
            : await pgliteDump(stateDir, store, target === 'pglite-tools-tuned' ? backupV8Flags : []);
        const run: Run = {
          target,
          database: database.label,
          seconds: result.seconds,
          bytes: result.bytes,
          procedureSeconds: result.procedureSeconds,
          peakRssBytes: result.run.peakRssBytes,
        };
        await rm(store, { recursive: true, force: true });
        return run;
      };
      if (!context.quick) for (const target of plan.targets) await runOnce(target);
      for (let round = 0; round < plan.repeats; round += 1) {
        const order = plan.targets.map((_, index) => plan.targets[(index + round) % plan.targets.length]!);
        for (const target of order) runs.push(await runOnce(target));
        context.progress(`embedded-backup: ${database.label}: round ${round + 1}/${plan.repeats} done`);
      }
    }
    return report(plan, runs);
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

/**
 * A fresh STATE_DIR whose data directory exists (PGlite's initdb, which the first open of a
 * STATE_DIR pays, is not what is measured); for a non-empty database, migrated and seeded
 * through Shipshape's own code.
 */
async function prepare(stateDir: string, database: Database, context: BenchmarkContext): Promise<void> {
  context.progress(`embedded-backup: preparing ${database.label}`);
  const logger = createLogger('silent');
  const opened = await openDatabase(loadConfig({ STATE_DIR: stateDir }), logger);
  try {
    if (database.users === undefined) return;
    await prepareSchema(opened, logger, { migrate: true });
    await seed(opened.pool, { users: database.users, tasksPerUser: 100 });
  } finally {
    await opened.close();
  }
}

interface Outcome {
  readonly run: MeasuredRun;
  readonly seconds: number;
  readonly bytes: number;
  readonly procedureSeconds: number | undefined;
}

async function shipshapeBackup(stateDir: string, store: string): Promise<Outcome> {
  const run = await runMeasured(process.execPath, [cliEntry, 'db', 'backup', '--json'], {
    STATE_DIR: stateDir,
    BACKUP_STORAGE_URL: `file://${store}`,
    LOG_LEVEL: 'warn',
    SHIPSHAPE_OPERATOR: 'bench',
  });
  if (run.code !== 0) throw new ShipError('SHIP_ERR_STEP_FAILED', `shipshape db backup exited with ${run.code}:\n${run.stderr.slice(-3_000)}`);
  const report = JSON.parse(run.stdout) as { durationMs?: unknown; steps?: Array<{ id?: unknown; output?: { facts?: { dump?: { bytes?: unknown } } } }> };
  const dumpBytes = report.steps?.find((step) => step.id === 'dump')?.output?.facts?.dump?.bytes;
  return {
    run,
    seconds: run.seconds,
    bytes: typeof dumpBytes === 'number' ? dumpBytes : Number.NaN,
    procedureSeconds: typeof report.durationMs === 'number' ? report.durationMs / 1000 : undefined,
  };
}

/** The V8 flags `shipshape db backup` runs with, so the tuned baseline differs from it only in what it does. */
const backupV8Flags = v8FlagsFor(['node', 'shipshape', 'db', 'backup']);

async function pgliteDump(stateDir: string, store: string, v8Flags: readonly string[]): Promise<Outcome> {
  const output = path.join(store, 'dump.sql');
  await mkdir(store, { recursive: true });
  const run = await runMeasured(process.execPath, [...v8Flags, path.join(benchDir, 'lib/pglite-dump.ts'), path.join(stateDir, 'db', 'data'), output], {});
  if (run.code !== 0) throw new ShipError('SHIP_ERR_STEP_FAILED', `pglite-dump exited with ${run.code}:\n${run.stderr.slice(-3_000)}`);
  return { run, seconds: run.seconds, bytes: (await stat(output)).size, procedureSeconds: undefined };
}

function report(plan: Plan, runs: readonly Run[]): BenchmarkReport {
  const rows: string[][] = [];
  const notes: string[] = [];
  const summary: string[] = [];
  const goals: GoalCheck[] = [];
  for (const database of plan.databases) {
    const ofDatabase = runs.filter((run) => run.database === database.label);
    for (const target of plan.targets) {
      const ofTarget = ofDatabase.filter((run) => run.target === target);
      if (ofTarget.length === 0) continue;
      const procedure = ofTarget.map((run) => run.procedureSeconds).filter((value): value is number => value !== undefined);
      rows.push([
        database.label,
        targetLabels[target],
        formatSpread(spread(ofTarget.map((run) => run.seconds))),
        procedure.length ? formatNumber(spread(procedure).median) : '–',
        formatNumber(spread(ofTarget.map((run) => run.bytes)).median / 1e3),
        formatNumber(Math.max(...ofTarget.map((run) => run.peakRssBytes)) / 1e6),
      ]);
    }
    const ours = ofDatabase.filter((run) => run.target === 'shipshape');
    const ratioTo = (baseline: TargetName) => {
      const theirs = ofDatabase.filter((run) => run.target === baseline);
      return spread(ours.map((run, index) => run.seconds / (theirs[index]?.seconds ?? Number.NaN)).filter(Number.isFinite));
    };
    const plain = ratioTo('pglite-tools');
    const tuned = ratioTo('pglite-tools-tuned');
    const parts = [
      Number.isFinite(plain.median)
        ? { short: `${plain.median.toFixed(2)}×`, long: formatRatio(plain), what: "PGlite's own pgDump (Node's defaults)" }
        : undefined,
      Number.isFinite(tuned.median)
        ? { short: `${tuned.median.toFixed(2)}×`, long: formatRatio(tuned), what: "PGlite's own pgDump with the same V8 flags" }
        : undefined,
    ].filter((part) => part !== undefined);
    // The stricter baseline when measured: PGlite's own dump with the same V8 flags, so the flags are not what is compared.
    const [against, ratio] = Number.isFinite(tuned.median) ? ['with the same V8 flags', tuned] : ["with Node's defaults", plain];
    if (Number.isFinite(ratio.median)) {
      goals.push({
        measure: `embedded \`db backup\`, ${database.label} database`,
        baseline: `PGlite's own pgDump, same data directory, ${against}`,
        goal: `≤ ${GOAL_RATIO}×`,
        measured: `${formatTimes(ratio)}`,
        met: ratio.median <= GOAL_RATIO,
      });
    }
    if (parts.length > 0) {
      summary.push(
        `${database.label} embedded database: \`shipshape db backup\` takes ${parts.map((part) => `${part.short} the wall time of ${part.what}`).join(', ')}.`,
      );
      notes.push(
        `${database.label}: \`shipshape db backup\` takes ${parts.map((part) => `${part.long} of the wall time of ${part.what}`).join(', ')}, on the same data directory.`,
      );
    }
  }
  notes.push(
    "Both sides start a Node process, load PGlite (PostgreSQL in WebAssembly) and open the data directory; that is most of either's time on a small database. " +
      'Shipshape then also takes its run lock and journal, checks storage with a probe object, counts every table, hashes the dump as it streams into storage, ' +
      're-reads it to check size, SHA-256 and its SQL shape, and writes the manifest. `db backup` runs PGlite with V8 baseline code only (src/cli/command-tuning.ts); ' +
      "the direct pgDump is measured both with Node's defaults (which include a wait at exit for background WebAssembly recompilation) and with the same flags.",
  );
  return {
    size: `${plan.databases.map((database) => database.label).join(' and ')}; ${plan === QUICK ? 'no warm-up' : 'one warm-up run of each'}, ${plan.repeats} round(s) per database`,
    sections: [
      {
        heading: 'Wall time',
        intro:
          'Seconds: median (min–max) over the rounds, process start to exit. "Of which the procedure": the run\'s own duration from the CLI\'s JSON report. ' +
          'Dump kB: the SQL dump written. Peak RSS: the highest of the rounds.',
        table: { columns: ['Database', 'Backup', 'Seconds', 'Of which the procedure, s', 'Dump kB', 'Peak RSS MB'], rows },
      },
      { heading: 'Findings and caveats', notes },
    ],
    commands: [
      'STATE_DIR=<state dir> BACKUP_STORAGE_URL=file://<dir> LOG_LEVEL=warn npx shipshape db backup --json',
      "node [<db backup's V8 flags>] bench/lib/pglite-dump.ts <state dir>/db/data <dir>/dump.sql   (PGlite.create + pgDump --no-owner --no-privileges --clean --if-exists + write)",
    ],
    measurements: runs.length,
    summary,
    goals,
  };
}
