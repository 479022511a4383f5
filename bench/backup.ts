/**
 * Benchmark 2, backup: `shipshape db backup` (the real CLI, its own process) of generated
 * databases of about 250 MB and 1 GB, to file storage and to s3rver, against two baselines
 * in the same run: the runbook's own pipeline done by hand (`pg_dump --format=custom` to a
 * file, then `gzip`, then a copy into the same store), and a bare `pg_dump -Fc -Z1` straight
 * into the same store (what our dump step does, without the verification, the row counts and
 * Node). Targets are interleaved round by round and ratios taken per round. Reported: wall time and its ratio, bytes stored, and the peak RSS of our process,
 * which must not grow with the database (the dump is streamed, never held).
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { startS3rver, type FakeS3 } from '../test/fakes/s3.ts';
import { ShipError } from '../src/errors.ts';
import { createBenchDatabase } from './lib/database.ts';
import { cliEntry } from './lib/paths.ts';
import { runMeasured, type MeasuredRun } from './lib/processes.ts';
import { seed } from './lib/seed.ts';
import { formatNumber, formatRatio, formatTimes, formatSpread, spread } from './lib/stats.ts';
import type { BenchmarkContext, BenchmarkReport, GoalCheck, MeasurableBenchmark } from './lib/types.ts';

interface Size {
  readonly label: string;
  readonly tasks: number;
}

interface Plan {
  readonly sizes: readonly Size[];
  readonly repeats: number;
  /** Untimed runs before the rounds at each size: they fill the page cache (pipeline) and Node's caches (CLI). */
  readonly warmUp: readonly TargetName[];
}

// ~215 bytes of database per task (row, indexes, users and sessions included), measured.
const targetNames = ['shipshape-file', 'pipeline-file', 'bare-file', 'shipshape-s3', 'pipeline-s3', 'bare-s3'] as const;
type TargetName = (typeof targetNames)[number];

const FULL_SIZES: Readonly<Record<string, Size>> = {
  '250mb': { label: '≈250 MB', tasks: 1_150_000 },
  '1gb': { label: '≈1 GB', tasks: 4_700_000 },
};
/** Both sizes, 3 rounds; BENCH_BACKUP_SIZES=1gb (or 250mb) and BENCH_BACKUP_ROUNDS=<n> for partial runs. */
const FULL: Plan = {
  sizes: (process.env.BENCH_BACKUP_SIZES ?? '250mb,1gb').split(',').map((name) => {
    const size = FULL_SIZES[name.trim()];
    if (size === undefined) throw new ShipError('SHIP_ERR_VALIDATION', `BENCH_BACKUP_SIZES: unknown size "${name}"; use 250mb, 1gb or both.`);
    return size;
  }),
  repeats: Number(process.env.BENCH_BACKUP_ROUNDS ?? 3),
  warmUp: targetNames,
};
/** Issue 13's goals: at the larger size against both baselines, and peak RSS at every size. */
const GOAL_PIPELINE_RATIO = 0.4;
const GOAL_BARE_RATIO = 1.15;
const GOAL_PEAK_RSS_MB = 150;

// Quick: one small size, no warm-up; the RSS comparison needs the full run's two sizes.
const QUICK: Plan = { sizes: [{ label: 'small', tasks: 10_000 }], repeats: 1, warmUp: [] };
const targetLabels: Record<TargetName, string> = {
  'shipshape-file': '`shipshape db backup` → file storage',
  'pipeline-file': 'runbook pipeline → file storage',
  'shipshape-s3': '`shipshape db backup` → s3rver',
  'pipeline-s3': 'runbook pipeline → s3rver',
  'bare-file': 'bare `pg_dump -Fc -Z1` → file storage',
  'bare-s3': 'bare `pg_dump -Fc -Z1` → s3rver',
};

interface Run {
  readonly target: TargetName;
  readonly size: string;
  readonly databaseBytes: number;
  readonly seconds: number;
  readonly storedBytes: number;
  /** Shipshape only: the CLI process's peak RSS. */
  readonly peakRssBytes: number | undefined;
  /** Shipshape only: the procedure's own duration from the CLI's JSON report (the rest is start-up and exit). */
  readonly procedureSeconds: number | undefined;
  /** Pipeline only: seconds of pg_dump, gzip and the copy. */
  readonly steps: readonly number[] | undefined;
}

export const benchmark: MeasurableBenchmark = {
  name: 'backup',
  order: 2,
  title: 'Backup',
  description:
    '`shipshape db backup` (the real CLI in its own process, verification included) of generated databases of about 250 MB and 1 GB, ' +
    "to file storage and to s3rver, against the runbook's own pipeline run by hand in the same run: `pg_dump --format=custom` to a file, " +
    'then `gzip`, then a copy into the same store; and against a bare `pg_dump -Fc -Z1` straight into the same store. ' +
    'Wall-time ratios (per round), bytes stored, and the peak RSS of our process at both sizes.',
  run: runBackupBenchmark,
};

async function runBackupBenchmark(context: BenchmarkContext): Promise<BenchmarkReport> {
  const plan = context.quick ? QUICK : FULL;
  const workDir = await mkdtemp(path.join(tmpdir(), 'shipshape-bench-backup-'));
  const s3 = await startS3rver({ bucket: 'shipshape-bench' });
  const s3Client = new S3Client({
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  const runs: Run[] = [];
  let sequence = 0;
  try {
    for (const size of plan.sizes) {
      const database = await createBenchDatabase(context.adminUrl, 'backup');
      try {
        context.progress(`backup: seeding ${size.tasks.toLocaleString('en-US')} tasks (${size.label})`);
        await seed(database.pool, { users: Math.ceil(size.tasks / 100), tasksPerUser: 100 });
        const { rows } = await database.pool.query<{ bytes: number }>('SELECT pg_database_size(current_database()) AS bytes');
        const databaseBytes = rows[0]?.bytes ?? 0;
        context.progress(`backup: ${size.label}: database is ${formatNumber(databaseBytes / 1e6)} MB`);

        const runOnce = async (target: TargetName): Promise<Run> => {
          sequence += 1;
          const store = target.endsWith('-file')
            ? { kind: 'file' as const, dir: path.join(workDir, `store-${sequence}`) }
            : { kind: 's3' as const, prefix: `run-${sequence}` };
          const env = {
            DATABASE_URL: database.url,
            LOG_LEVEL: 'warn',
            SHIPSHAPE_OPERATOR: 'bench',
            STATE_DIR: path.join(workDir, 'state'),
            ...storeEnv(store, s3),
          };
          const result = target.startsWith('shipshape')
            ? await shipshapeBackup(env)
            : target.startsWith('bare')
              ? await bareDump(database.url, store, s3Client, s3.bucket)
              : await pipeline(database.url, path.join(workDir, `dump-${sequence}`), store, s3Client, s3.bucket);
          const storedBytes = store.kind === 'file' ? await directoryBytes(store.dir) : await prefixBytes(s3Client, s3.bucket, store.prefix);
          if (store.kind === 'file') await rm(store.dir, { recursive: true, force: true });
          return {
            target,
            size: size.label,
            databaseBytes,
            seconds: result.seconds,
            storedBytes,
            peakRssBytes: 'peakRssBytes' in result ? result.peakRssBytes : undefined,
            procedureSeconds: 'stdout' in result ? procedureSeconds(result.stdout) : undefined,
            steps: 'steps' in result ? result.steps : undefined,
          };
        };

        for (const target of plan.warmUp) await runOnce(target);
        for (let round = 0; round < plan.repeats; round += 1) {
          const order = targetNames.map((_, index) => targetNames[(index + round) % targetNames.length]!);
          for (const target of order) runs.push(await runOnce(target));
          context.progress(`backup: ${size.label}: round ${round + 1}/${plan.repeats} done`);
        }
      } finally {
        await database.drop();
      }
    }
    return report(plan, runs);
  } finally {
    s3Client.destroy();
    await s3.close();
    await rm(workDir, { recursive: true, force: true });
  }
}

type Store = { kind: 'file'; dir: string } | { kind: 's3'; prefix: string };

function storeEnv(store: Store, s3: FakeS3): Record<string, string> {
  if (store.kind === 'file') return { BACKUP_STORAGE_URL: `file://${store.dir}` };
  return {
    BACKUP_STORAGE_URL: `s3://${s3.bucket}/${store.prefix}`,
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: 'true',
    AWS_REGION: s3.region,
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  };
}

async function shipshapeBackup(env: Record<string, string>): Promise<MeasuredRun> {
  const result = await runMeasured(process.execPath, [cliEntry, 'db', 'backup', '--json'], env);
  if (result.code !== 0) throw new ShipError('SHIP_ERR_STEP_FAILED', `shipshape db backup exited with ${result.code}:\n${result.stderr.slice(-3_000)}`);
  return result;
}

/** The runbook's steps, one after another as an operator would run them. */
async function pipeline(
  databaseUrl: string,
  dumpFile: string,
  store: Store,
  s3Client: S3Client,
  bucket: string,
): Promise<{ seconds: number; steps: number[] }> {
  const dump = await runMeasured('pg_dump', ['--format=custom', `--file=${dumpFile}`, `--dbname=${databaseUrl}`], {});
  if (dump.code !== 0) throw new ShipError('SHIP_ERR_STEP_FAILED', `pg_dump exited with ${dump.code}: ${dump.stderr.slice(-2_000)}`);
  const gzip = await runMeasured('gzip', [dumpFile], {});
  if (gzip.code !== 0) throw new ShipError('SHIP_ERR_STEP_FAILED', `gzip exited with ${gzip.code}: ${gzip.stderr.slice(-2_000)}`);
  const compressed = `${dumpFile}.gz`;
  const copyStarted = performance.now();
  if (store.kind === 'file') {
    await mkdir(store.dir, { recursive: true });
    await copyFile(compressed, path.join(store.dir, path.basename(compressed)));
  } else {
    // What `aws s3 cp` does: a multipart upload for big files.
    await new Upload({
      client: s3Client,
      params: { Bucket: bucket, Key: `${store.prefix}/${path.basename(compressed)}`, Body: createReadStream(compressed) },
    }).done();
  }
  const copySeconds = (performance.now() - copyStarted) / 1000;
  await rm(compressed, { force: true });
  return { seconds: dump.seconds + gzip.seconds + copySeconds, steps: [dump.seconds, gzip.seconds, copySeconds] };
}

/**
 * The floor for our dump step: `pg_dump -Fc -Z1` (BACKUP_COMPRESSION_LEVEL's default) written
 * straight into the store — `--file` into the folder, or piped into a multipart upload as
 * `pg_dump … | aws s3 cp - s3://…` does. No row counts, no re-read, no manifest.
 */
async function bareDump(databaseUrl: string, store: Store, s3Client: S3Client, bucket: string): Promise<{ seconds: number; steps: undefined }> {
  if (store.kind === 'file') {
    await mkdir(store.dir, { recursive: true });
    const dump = await runMeasured('pg_dump', ['--format=custom', '--compress=1', `--file=${path.join(store.dir, 'dump')}`, `--dbname=${databaseUrl}`], {});
    if (dump.code !== 0) throw new ShipError('SHIP_ERR_STEP_FAILED', `pg_dump exited with ${dump.code}: ${dump.stderr.slice(-2_000)}`);
    return { seconds: dump.seconds, steps: undefined };
  }
  const started = performance.now();
  const child = spawn('pg_dump', ['--format=custom', '--compress=1', `--dbname=${databaseUrl}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2_000)));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  await new Upload({ client: s3Client, params: { Bucket: bucket, Key: `${store.prefix}/dump`, Body: child.stdout } }).done();
  const code = await exited;
  if (code !== 0) throw new ShipError('SHIP_ERR_STEP_FAILED', `pg_dump exited with ${code}: ${stderr}`);
  return { seconds: (performance.now() - started) / 1000, steps: undefined };
}

function procedureSeconds(reportJson: string): number | undefined {
  try {
    const report: unknown = JSON.parse(reportJson);
    return typeof report === 'object' && report !== null && 'durationMs' in report && typeof report.durationMs === 'number'
      ? report.durationMs / 1000
      : undefined;
  } catch {
    return undefined;
  }
}

async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

async function prefixBytes(client: S3Client, bucket: string, prefix: string): Promise<number> {
  let total = 0;
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, ContinuationToken: token }));
    for (const object of page.Contents ?? []) total += object.Size ?? 0;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return total;
}

function report(plan: Plan, runs: readonly Run[]): BenchmarkReport {
  const rows: string[][] = [];
  const notes: string[] = [];
  const summary: string[] = [];
  const goals: GoalCheck[] = [];
  for (const size of plan.sizes) {
    const ofSize = runs.filter((run) => run.size === size.label);
    const databaseMb = (ofSize[0]?.databaseBytes ?? 0) / 1e6;
    for (const target of targetNames) {
      const ofTarget = ofSize.filter((run) => run.target === target);
      if (ofTarget.length === 0) continue;
      const rss = ofTarget.map((run) => run.peakRssBytes).filter((value): value is number => value !== undefined);
      const steps = ofTarget.map((run) => run.steps).filter((value): value is readonly number[] => value !== undefined);
      const procedure = ofTarget.map((run) => run.procedureSeconds).filter((value): value is number => value !== undefined);
      rows.push([
        `${size.label} (${formatNumber(databaseMb)} MB)`,
        targetLabels[target],
        formatSpread(spread(ofTarget.map((run) => run.seconds))),
        procedure.length ? formatNumber(spread(procedure).median) : '–',
        formatNumber(spread(ofTarget.map((run) => run.storedBytes)).median / 1e6),
        rss.length ? formatNumber(spread(rss).max / 1e6) : '–',
        steps.length ? [0, 1, 2].map((step) => formatNumber(spread(steps.map((list) => list[step] ?? Number.NaN)).median)).join(' + ') : '–',
      ]);
    }
    for (const store of ['file', 's3'] as const) {
      const ours = ofSize.filter((run) => run.target === `shipshape-${store}`);
      // Per round: the rounds ran the targets back to back, so the index pairs them.
      const perRound = (baseline: TargetName) => {
        const theirs = ofSize.filter((run) => run.target === baseline);
        return {
          ratio: spread(ours.map((run, index) => run.seconds / (theirs[index]?.seconds ?? Number.NaN)).filter(Number.isFinite)),
          bytes: spread(ours.map((run) => run.storedBytes)).median / spread(theirs.map((run) => run.storedBytes)).median,
        };
      };
      const pipelineRatio = perRound(`pipeline-${store}`);
      const bareRatio = perRound(`bare-${store}`);
      const where = store === 'file' ? 'file storage' : 's3rver';
      if (Number.isFinite(pipelineRatio.ratio.median) && size === plan.sizes.at(-1)) {
        goals.push(
          {
            measure: `\`db backup\` wall time, ${size.label}, ${where}`,
            baseline: 'runbook pipeline (pg_dump → gzip → copy)',
            goal: `≤ ${GOAL_PIPELINE_RATIO}×`,
            measured: `${formatTimes(pipelineRatio.ratio)}`,
            met: pipelineRatio.ratio.median <= GOAL_PIPELINE_RATIO,
          },
          {
            measure: `\`db backup\` wall time, ${size.label}, ${where}`,
            baseline: 'bare `pg_dump -Fc -Z1` into the same store',
            goal: `≤ ${GOAL_BARE_RATIO}×`,
            measured: `${formatTimes(bareRatio.ratio)}`,
            met: bareRatio.ratio.median <= GOAL_BARE_RATIO,
          },
        );
        summary.push(
          `${size.label} to ${where}: ${pipelineRatio.ratio.median.toFixed(2)}× the runbook pipeline's wall time (${formatNumber(pipelineRatio.bytes)}× its bytes), ` +
            `${bareRatio.ratio.median.toFixed(2)}× a bare \`pg_dump -Fc -Z1\`.`,
        );
      }
      if (Number.isFinite(pipelineRatio.ratio.median)) {
        notes.push(
          `${size.label}, ${where}: \`shipshape db backup\` takes ${formatRatio(pipelineRatio.ratio)} of the pipeline's wall time and stores ${formatNumber(pipelineRatio.bytes)}× its bytes; ` +
            `${formatRatio(bareRatio.ratio)} of a bare \`pg_dump -Fc -Z1\`'s (${formatNumber(bareRatio.bytes)}× its bytes).`,
        );
      }
    }
  }
  const rssBySize = plan.sizes.map((size) => {
    const values = runs.filter((run) => run.size === size.label && run.peakRssBytes !== undefined).map((run) => run.peakRssBytes ?? 0);
    return { label: size.label, max: values.length ? Math.max(...values) : Number.NaN };
  });
  for (const size of rssBySize) {
    if (!Number.isFinite(size.max)) continue;
    goals.push({
      measure: `\`db backup\` peak RSS, ${size.label}`,
      baseline: '–',
      goal: `≤ ${GOAL_PEAK_RSS_MB} MB`,
      measured: `${formatNumber(size.max / 1e6)} MB (highest of every round and store)`,
      met: size.max / 1e6 <= GOAL_PEAK_RSS_MB,
    });
  }
  const [smaller, larger] = rssBySize;
  if (smaller && larger && Number.isFinite(smaller.max) && Number.isFinite(larger.max)) {
    summary.push(`Peak RSS ${formatNumber(smaller.max / 1e6)} MB at ${smaller.label}, ${formatNumber(larger.max / 1e6)} MB at ${larger.label}.`);
    notes.push(
      `Peak RSS of the \`shipshape db backup\` process: ${formatNumber(smaller.max / 1e6)} MB at ${smaller.label}, ${formatNumber(larger.max / 1e6)} MB at ${larger.label} ` +
        `(${formatNumber(larger.max / smaller.max)}×) while the database grew ${formatNumber((runs.find((run) => run.size === larger.label)?.databaseBytes ?? 0) / (runs.find((run) => run.size === smaller.label)?.databaseBytes ?? 1))}×: ` +
        (larger.max / smaller.max < 1.25
          ? 'flat, as a streamed dump should be.'
          : '**it grows with the database**, so something holds the dump (or a large part of it) in memory.'),
    );
  }
  notes.push(
    "Shipshape's wall time is the whole CLI run as an operator sees it: Node start-up, prerequisites, the dump streamed into storage at `BACKUP_COMPRESSION_LEVEL` (default 1) with size and SHA-256 taken " +
      "and `pg_restore --list` fed on the way, every table's rows counted in the dump's snapshot, the stored copy read back (its size and SHA-256 must be the stream's), and the manifest. The pipeline only dumps (pg_dump's default compression), gzips and copies, and verifies nothing.",
    'Pipeline steps: pg_dump to a local file + gzip of it + the copy into the store (file copy, or a multipart upload as `aws s3 cp` does), in seconds (medians).',
    'Bare `pg_dump -Fc -Z1`: the floor for our dump step, written straight into the store (`--file` into the folder, or piped into a multipart upload); it counts no rows, checks nothing and writes no manifest.',
  );
  return {
    size:
      plan.sizes.map((size) => `${size.label} (${size.tasks.toLocaleString('en-US')} tasks)`).join(' and ') +
      (plan.warmUp.length ? `; warm-up (${plan.warmUp.join(', ')}), then` : '; no warm-up,') +
      ` ${plan.repeats} round(s) per size`,
    sections: [
      {
        heading: 'Wall time, bytes stored, memory',
        intro:
          'Seconds: median (min–max) over the rounds, process start to exit. "Of which the procedure": the run\'s own duration from the CLI\'s JSON report (the rest is Node start-up and exit). ' +
          'Stored: the bytes that landed in the store (dump and manifest). Peak RSS: the highest of the rounds.',
        table: { columns: ['Database', 'Backup', 'Seconds', 'Of which the procedure, s', 'Stored MB', 'Peak RSS MB', 'Pipeline steps, s'], rows },
      },
      { heading: 'Findings and caveats', notes },
    ],
    commands: [
      'DATABASE_URL=<bench database> BACKUP_STORAGE_URL=file://<dir> | s3://<bucket>/<prefix> (+ S3_ENDPOINT, S3_FORCE_PATH_STYLE=true, AWS_*) LOG_LEVEL=warn npx shipshape db backup --json',
      'pg_dump --format=custom --file=<dump> --dbname=<bench database>',
      'gzip <dump>',
      'cp <dump>.gz <dir>/   |   multipart upload of <dump>.gz to s3rver (@aws-sdk/lib-storage, as `aws s3 cp`)',
      'pg_dump --format=custom --compress=1 --file=<dir>/dump --dbname=<bench database>   |   pg_dump --format=custom --compress=1 --dbname=<bench database> | multipart upload to s3rver',
    ],
    measurements: runs.length,
    summary,
    goals,
  };
}
