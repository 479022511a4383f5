/**
 * Benchmark: the Expo Updates manifest (issue 15), the hottest read an app makes — every
 * launch of every device asks `GET /updates/manifest`.
 *
 * `shipshape serve` on the real PostgreSQL with a code-signing key, a released update and a
 * second one rolling out to 50 % (so each request is bucketed by its EAS-Client-ID, one per
 * simulated device), under autocannon: manifest requests per second against the HTTP ceiling
 * of the same server (`GET /health`, which answers from memory), interleaved round by round.
 */
import { generateKeyPairSync, createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ShipError } from '../src/errors.ts';
import { CEILING_ROUTES, startHttpCeiling } from './lib/ceiling.ts';
import { createBenchDatabase } from './lib/database.ts';
import { startLoadGenerator, type LoadJob, type LoadResult } from './lib/load-generator.ts';
import { cliEntry } from './lib/paths.ts';
import { runMeasured, startShipshape } from './lib/processes.ts';
import { formatNumber, formatRatio, formatSpread, spread } from './lib/stats.ts';
import type { BenchmarkContext, BenchmarkReport, MeasurableBenchmark } from './lib/types.ts';

interface Plan {
  readonly rounds: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly connections: number;
}

const FULL: Plan = { rounds: 5, seconds: 5, warmupSeconds: 3, connections: 64 };
const QUICK: Plan = { rounds: 1, seconds: 1, warmupSeconds: 1, connections: 16 };
const ASSETS = 20;

export const benchmark: MeasurableBenchmark = {
  name: 'updates',
  order: 15,
  title: 'OTA update manifest',
  description:
    'GET /updates/manifest (Expo Updates protocol v1, signed, a rollout at 50 % bucketed per EAS-Client-ID) against the HTTP ceiling (the same Fastify app answering a constant body) and GET /health of the same server, interleaved round by round.',
  run: runUpdatesBenchmark,
};

async function runUpdatesBenchmark(context: BenchmarkContext): Promise<BenchmarkReport> {
  const plan = context.quick ? QUICK : FULL;
  const database = await createBenchDatabase(context.adminUrl, 'updates');
  const work = await mkdtemp(path.join(tmpdir(), 'shipshape-bench-updates-'));
  const load = startLoadGenerator();
  let server: Awaited<ReturnType<typeof startShipshape>> | undefined;
  let ceiling: Awaited<ReturnType<typeof startHttpCeiling>> | undefined;
  try {
    const keyFile = path.join(work, 'private-key.pem');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const env = {
      DATABASE_URL: database.url,
      UPDATES_STORAGE_URL: `file://${path.join(work, 'storage')}`,
      UPDATES_CODE_SIGNING_KEY_FILE: keyFile,
      UPDATES_ASSET_BASE_URL: 'https://cdn.example.com',
      LOG_LEVEL: 'warn',
    };
    const shipshape = async (args: string[]) => {
      const run = await runMeasured(process.execPath, [cliEntry, ...args, '--json'], env);
      if (run.code !== 0) throw new ShipError('SHIP_ERR_STEP_FAILED', `shipshape ${args.join(' ')} failed (${run.code}): ${run.stderr.slice(-2_000)}`);
      return JSON.parse(run.stdout) as Record<string, { id: string }>;
    };
    context.progress('updates: publishing a released update and a staged one, rolling the second out to 50 %');
    await shipshape(['update', 'publish', await fakeExport(work, 'control'), '--channel', 'production', '--runtime-version', '1.0.0']);
    const candidate = (
      await shipshape(['update', 'publish', await fakeExport(work, 'candidate'), '--channel', 'production', '--runtime-version', '1.0.0', '--staged'])
    ).update!.id;
    await shipshape(['update', 'rollout', candidate, '--schedule', '50,100', '--every', '24h']);
    server = await startShipshape(database.url, env);
    const healthBody: unknown = await (await fetch(`${server.url}/health`)).json();
    ceiling = await startHttpCeiling(database.url, { health: healthBody, taskPage: {}, createdTask: {} }, work);

    const manifest: LoadJob = {
      url: `${server.url}/updates/manifest`,
      method: 'GET',
      connections: plan.connections,
      durationSeconds: plan.seconds,
      headers: {
        'expo-protocol-version': '1',
        'expo-platform': 'ios',
        'expo-runtime-version': '1.0.0',
        'expo-channel-name': 'production',
        accept: 'multipart/mixed,application/expo+json,application/json',
        'expo-expect-signature': 'sig, keyid="main"',
      },
      uniqueHeader: { name: 'eas-client-id', prefix: `bench-device-${randomBytes(4).toString('hex')}-` },
      expectedStatus: 200,
    };
    const health: LoadJob = { url: `${server.url}/health`, method: 'GET', connections: plan.connections, durationSeconds: plan.seconds, expectedStatus: 200 };
    const constant: LoadJob = { ...health, url: `${ceiling.url}${CEILING_ROUTES.health}` };
    const jobs = { manifest, health, ceiling: constant };
    context.progress('updates: warming up');
    for (const job of Object.values(jobs)) await load.run({ ...job, durationSeconds: plan.warmupSeconds });
    const results: Results = { manifest: [], health: [], ceiling: [] };
    for (let round = 0; round < plan.rounds; round += 1) {
      const order: Array<keyof Results> = ['manifest', 'health', 'ceiling'];
      // Rotated each round, so no target always runs first (or right after the same one).
      for (let turn = 0; turn < order.length; turn += 1) {
        const target = order[(turn + round) % order.length]!;
        results[target].push(await load.run(jobs[target]));
      }
      server.assertRunning();
      ceiling.assertRunning();
      context.progress(`updates: round ${round + 1}/${plan.rounds} done`);
    }
    return report(plan, results, [server.command, ceiling.command]);
  } finally {
    await ceiling?.stop();
    await server?.stop();
    await load.close();
    await database.drop();
    await rm(work, { recursive: true, force: true });
  }
}

/** An `npx expo export` output: a bundle per platform and ASSETS shared assets, named as Expo names them. */
async function fakeExport(work: string, label: string): Promise<string> {
  const dir = path.join(work, label);
  const files = new Map<string, Buffer>();
  const assets = Array.from({ length: ASSETS }, () => randomBytes(2_048)).map((content) => ({
    path: `assets/${createHash('md5').update(content).digest('hex')}`,
    ext: 'png',
    content,
  }));
  const fileMetadata: Record<string, { bundle: string; assets: Array<{ path: string; ext: string }> }> = {};
  for (const platform of ['ios', 'android']) {
    const bundle = Buffer.concat([Buffer.from(`// ${label} ${platform}\n`), randomBytes(256 * 1024)]);
    const bundlePath = `_expo/static/js/${platform}/index-${createHash('md5').update(bundle).digest('hex')}.hbc`;
    files.set(bundlePath, bundle);
    fileMetadata[platform] = { bundle: bundlePath, assets: assets.map(({ path: p, ext }) => ({ path: p, ext })) };
  }
  for (const asset of assets) files.set(asset.path, asset.content);
  files.set('metadata.json', Buffer.from(JSON.stringify({ version: 0, bundler: 'metro', fileMetadata })));
  for (const [relative, content] of files) {
    await mkdir(path.dirname(path.join(dir, relative)), { recursive: true });
    await writeFile(path.join(dir, relative), content);
  }
  return dir;
}

interface Results {
  manifest: LoadResult[];
  health: LoadResult[];
  ceiling: LoadResult[];
}

function report(plan: Plan, results: Results, commands: readonly string[]): BenchmarkReport {
  const row = (label: string, runs: readonly LoadResult[]) => [
    label,
    String(plan.connections),
    formatSpread(spread(runs.map((run) => run.throughput))),
    formatNumber(spread(runs.map((run) => run.latency.p50)).median),
    formatNumber(spread(runs.map((run) => run.latency.p95)).median),
    formatNumber(spread(runs.map((run) => run.latency.p99)).median),
    `${runs.reduce((sum, run) => sum + run.errors, 0)} / ${runs.reduce((sum, run) => sum + run.completed, 0)}`,
  ];
  const ratioTo = (baseline: readonly LoadResult[]) =>
    spread(results.manifest.map((run, index) => run.throughput / (baseline[index]?.throughput ?? Number.NaN)).filter(Number.isFinite));
  const ratio = ratioTo(results.ceiling);
  const healthRatio = ratioTo(results.health);
  const manifestRate = spread(results.manifest.map((run) => run.throughput)).median;
  return {
    size: `1 released update + 1 rolling out at 50 %, ${ASSETS} assets per platform, signed (RSA-2048); concurrency ${plan.connections}; ${plan.rounds} rounds of ${plan.seconds} s per target after a ${plan.warmupSeconds} s warm-up`,
    sections: [
      {
        heading: 'Throughput and latency',
        intro:
          "Successful responses per second, median (min–max) over the rounds; latencies are the median over rounds of each round's percentile, in milliseconds.",
        table: {
          columns: ['Endpoint', 'Concurrency', 'Throughput /s', 'p50 ms', 'p95 ms', 'p99 ms', 'Errors / requests'],
          rows: [
            row('GET /updates/manifest (multipart, signed, bucketed)', results.manifest),
            row('GET /health of the same server (one SELECT 1)', results.health),
            row('HTTP ceiling: the same Fastify app, constant body', results.ceiling),
          ],
        },
      },
      {
        heading: 'Findings and caveats',
        notes: [
          `The manifest answers at ${formatRatio(ratio)} of the HTTP ceiling's rate, and ${formatRatio(healthRatio)} of the same server's GET /health (per round, median (min–max)).`,
          "Per request: the protocol headers are validated, the channel's state (open rollout, release) comes from a one-second per-process cache backed by one SQL statement, the device is bucketed (SHA-256 of EAS-Client-ID and update id), and the manifest body and its RSA signature come from a per-process cache — updates never change once published, so nothing is signed on the request path.",
          'Every request carries a new EAS-Client-ID, so the 50 % split is exercised rather than one cached answer; about half of the responses are each update.',
        ],
      },
    ],
    commands: [
      ...commands,
      `autocannon (programmatic) -c ${plan.connections} -d ${plan.seconds} GET /updates/manifest with expo-protocol-version: 1, expo-platform: ios, expo-runtime-version: 1.0.0, a distinct eas-client-id per request; and GET /health`,
    ],
    measurements: results.manifest.length + results.health.length + results.ceiling.length,
    summary: [
      `GET /updates/manifest ${formatNumber(manifestRate)}/s at concurrency ${plan.connections}: ${ratio.median.toFixed(2)} of the HTTP ceiling, ${healthRatio.median.toFixed(2)} of the same server's GET /health.`,
    ],
  };
}
