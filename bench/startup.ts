/**
 * Benchmark 8, server start-up and idle memory: `shipshape serve` as `npm start` runs it (default
 * LOG_LEVEL, workers on) on PostgreSQL and on the embedded database. For each: the resident set
 * (VmRSS) once /health answers and after a few seconds idle, then after a short burst of real
 * requests (register, sign in, create and list tasks) and a few seconds idle again, and the peak
 * (VmHWM). The embedded server starts on a fresh STATE_DIR, so that start is the first
 * `npm start` after `npm ci`: seconds to /health 200 and the progress lines it printed. The
 * reference row is a bare Node HTTP server on the same Node, the floor any server stands on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBenchDatabase } from './lib/database.ts';
import { cliEntry, projectRoot } from './lib/paths.ts';
import { freePort, spawnTs, stopChild, waitUntilAnswering, watchChild } from './lib/processes.ts';
import { spread } from './lib/stats.ts';
import type { BenchmarkContext, BenchmarkReport, MeasurableBenchmark } from './lib/types.ts';

/** The goals, MB of resident set while idle. */
const GOAL_POSTGRES_MB = 120;
const GOAL_EMBEDDED_MB = 250;
/** And seconds from the first `npm start` on a fresh STATE_DIR to /health 200. */
const GOAL_FIRST_START_S = 10;

interface Memory {
  readonly rssMb: number;
  readonly peakMb: number;
}

interface ServerRun {
  readonly seconds: number;
  readonly atStart: Memory;
  readonly afterBurst: Memory;
  readonly progressLines: readonly string[];
  readonly requests: number;
}

export const benchmark: MeasurableBenchmark = {
  name: 'startup',
  order: 8,
  title: 'Server start-up and idle memory',
  description:
    '`shipshape serve` on PostgreSQL and on the embedded database (fresh STATE_DIR, i.e. the first `npm start`): seconds to /health 200, progress lines, and resident set idle after start and idle after a burst of requests; goals ≤ 120 MB (PostgreSQL), ≤ 250 MB (embedded), first start ≤ 10 s.',
  run: runStartup,
};

function memoryOf(pid: number | undefined): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN);
  return { rssMb: kib('VmRSS') / 1024, peakMb: kib('VmHWM') / 1024 };
}

/** A user's first minutes: register, sign in, then create and list tasks, `concurrency` at a time. */
async function burst(url: string, requests: number): Promise<number> {
  const post = (route: string, body: unknown, token?: string) =>
    fetch(`${url}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
  const email = `bench-${Date.now()}@example.com`;
  await (await post('/auth/register', { email, password: 'correct horse battery staple' })).arrayBuffer();
  const login = (await (await post('/auth/login', { email, password: 'correct horse battery staple' })).json()) as { token: string };
  let sent = 2;
  const concurrency = 8;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (let i = worker; i < requests; i += concurrency) {
        const response =
          i % 4 === 0
            ? await post('/tasks', { title: `task ${i}` }, login.token)
            : await fetch(`${url}${i % 4 === 1 ? '/health' : '/tasks'}`, { headers: { authorization: `Bearer ${login.token}` } });
        await response.arrayBuffer();
        sent += 1;
      }
    }),
  );
  return sent;
}

/** Starts `shipshape serve` as `npm start` does, measures, stops it. */
async function measureServe(env: Record<string, string>, options: { requests: number; idleMs: number }): Promise<ServerRun> {
  const port = await freePort();
  const started = performance.now();
  const child = spawnTs(cliEntry, ['serve'], { HOST: '127.0.0.1', PORT: String(port), ...env });
  const watched = watchChild(child, 'shipshape serve');
  const url = `http://127.0.0.1:${port}`;
  let lines = '';
  const collect = (chunk: Buffer) => {
    lines += chunk.toString();
  };
  child.stderr?.on('data', collect);
  try {
    await waitUntilAnswering(child, `${url}/health`, 'shipshape serve', 600_000);
    const seconds = (performance.now() - started) / 1000;
    child.stderr?.off('data', collect);
    await sleep(options.idleMs);
    const atStart = memoryOf(child.pid);
    const requests = await burst(url, options.requests);
    await sleep(options.idleMs);
    watched.assertRunning();
    const afterBurst = memoryOf(child.pid);
    const progressLines = lines
      .split('\n')
      .filter((line) => line.startsWith('{') && line.includes('"stage"'))
      .map((line) => (JSON.parse(line) as { msg: string }).msg);
    return { seconds, atStart, afterBurst, progressLines, requests };
  } finally {
    await stopChild(child);
  }
}

/** The floor: Node's own HTTP server doing nothing, on the same Node. */
async function bareNodeRss(idleMs: number): Promise<number> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['-e', `require('node:http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1')`], {
    cwd: projectRoot,
    stdio: 'ignore',
  });
  try {
    await waitUntilAnswering(child, `http://127.0.0.1:${port}/`, 'bare node http server');
    await sleep(idleMs);
    return memoryOf(child.pid).rssMb;
  } finally {
    await stopChild(child);
  }
}

const mb = (value: number) => String(Math.round(value));
const range = (values: readonly number[]) => {
  const s = spread(values);
  return values.length > 1 ? `${mb(s.median)} (${mb(s.min)}–${mb(s.max)})` : mb(s.median);
};

async function runStartup(context: BenchmarkContext): Promise<BenchmarkReport> {
  const rounds = context.quick ? 1 : 3;
  const options = context.quick ? { requests: 100, idleMs: 1_000 } : { requests: 2_000, idleMs: 5_000 };
  const database = await createBenchDatabase(context.adminUrl, 'startup');
  const postgres: ServerRun[] = [];
  const embedded: ServerRun[] = [];
  const floor: number[] = [];
  try {
    for (let round = 0; round < rounds; round += 1) {
      context.progress(`startup: round ${round + 1}/${rounds}: bare node, PostgreSQL, embedded on a fresh STATE_DIR`);
      floor.push(await bareNodeRss(options.idleMs));
      const stateDir = await mkdtemp(path.join(tmpdir(), 'shipshape-bench-startup-'));
      try {
        postgres.push(await measureServe({ DATABASE_URL: database.url, STATE_DIR: stateDir }, options));
      } finally {
        await rm(stateDir, { recursive: true, force: true });
      }
      const fresh = await mkdtemp(path.join(tmpdir(), 'shipshape-bench-startup-'));
      try {
        embedded.push(await measureServe({ STATE_DIR: fresh }, options));
      } finally {
        await rm(fresh, { recursive: true, force: true });
      }
    }
  } finally {
    await database.drop();
  }
  const row = (label: string, runs: readonly ServerRun[], goalMb: number) => {
    const idle = runs.map((run) => Math.max(run.atStart.rssMb, run.afterBurst.rssMb));
    return [
      label,
      range(runs.map((run) => run.atStart.rssMb)),
      range(runs.map((run) => run.afterBurst.rssMb)),
      range(runs.map((run) => run.afterBurst.peakMb)),
      `≤ ${goalMb}`,
      spread(idle).median <= goalMb ? 'met' : 'not met',
    ];
  };
  const firstStart = spread(embedded.map((run) => run.seconds));
  const lastLines = embedded.at(-1)?.progressLines ?? [];
  const shownLines = lastLines.length > 8 ? [...lastLines.slice(0, 4), '…', ...lastLines.slice(-3)] : lastLines;
  const pgIdle = spread(postgres.map((run) => Math.max(run.atStart.rssMb, run.afterBurst.rssMb))).median;
  const embeddedIdle = spread(embedded.map((run) => Math.max(run.atStart.rssMb, run.afterBurst.rssMb))).median;
  return {
    size: `${rounds} round${rounds === 1 ? '' : 's'}; burst of ${options.requests} requests at concurrency 8; ${options.idleMs / 1000} s idle before each reading`,
    sections: [
      {
        heading: 'Idle resident set (MB)',
        intro:
          'VmRSS of the `serve` process, idle after start and idle after the burst; peak is VmHWM over its whole life (the embedded first start included). Median (min–max) over the rounds.',
        table: {
          columns: ['Server', 'Idle after start', 'Idle after burst', 'Peak', 'Goal', 'Met'],
          rows: [
            row('`shipshape serve`, PostgreSQL', postgres, GOAL_POSTGRES_MB),
            row('`shipshape serve`, embedded (fresh STATE_DIR)', embedded, GOAL_EMBEDDED_MB),
            ['bare Node HTTP server (reference)', range(floor), '—', '—', '—', '—'],
          ],
        },
      },
      {
        heading: 'First start on a fresh STATE_DIR (embedded)',
        intro:
          'Seconds from spawning `shipshape serve` (as `npm start` does) to the first 200 from /health, and the progress lines it printed meanwhile (one every 2 s while it prepares).',
        table: {
          columns: ['Seconds to /health 200', 'Progress lines', 'Goal', 'Met'],
          rows: [
            [
              formatSeconds(embedded.map((run) => run.seconds)),
              range(embedded.map((run) => run.progressLines.length)),
              `≤ ${GOAL_FIRST_START_S} s`,
              firstStart.median <= GOAL_FIRST_START_S ? 'met' : 'not met',
            ],
          ],
        },
        code: shownLines.join('\n') || '(no progress line: ready within the first interval)',
      },
    ],
    commands: [
      'node -e "require(\'node:http\').createServer(…).listen(PORT)"',
      'DATABASE_URL=<bench database> STATE_DIR=<empty folder> HOST=127.0.0.1 PORT=<free> npx shipshape serve',
      'STATE_DIR=<empty folder> HOST=127.0.0.1 PORT=<free> npx shipshape serve',
      '# RSS and peak: VmRSS and VmHWM from /proc/<pid>/status',
    ],
    measurements: postgres.length + embedded.length + floor.length,
    goals: [
      {
        measure: 'idle `serve` RSS, PostgreSQL',
        baseline: `bare Node HTTP server: ${range(floor)} MB`,
        goal: `≤ ${GOAL_POSTGRES_MB} MB`,
        measured: `${Math.round(pgIdle)} MB`,
        met: pgIdle <= GOAL_POSTGRES_MB,
      },
      {
        measure: 'idle `serve` RSS, embedded',
        baseline: `bare Node HTTP server: ${range(floor)} MB`,
        goal: `≤ ${GOAL_EMBEDDED_MB} MB`,
        measured: `${Math.round(embeddedIdle)} MB`,
        met: embeddedIdle <= GOAL_EMBEDDED_MB,
      },
      {
        measure: 'first `npm start` on a fresh STATE_DIR to /health 200',
        baseline: '–',
        goal: `≤ ${GOAL_FIRST_START_S} s, a progress line every 2 s`,
        measured: `${firstStart.median.toFixed(1)} s, ${range(embedded.map((run) => run.progressLines.length))} progress lines`,
        // A line every 2 s: at least one per whole interval the start took.
        met: firstStart.median <= GOAL_FIRST_START_S && embedded.every((run) => run.progressLines.length >= Math.floor(run.seconds / 2) - 1),
      },
    ],
    summary: [
      `Idle serve RSS ${Math.round(pgIdle)} MB on PostgreSQL (goal ≤ ${GOAL_POSTGRES_MB}), ${Math.round(embeddedIdle)} MB embedded (goal ≤ ${GOAL_EMBEDDED_MB}); first start on a fresh STATE_DIR ${firstStart.median.toFixed(1)} s to /health (goal ≤ ${GOAL_FIRST_START_S} s) with ${lastLines.length} progress lines.`,
    ],
  };
}

function formatSeconds(values: readonly number[]): string {
  const s = spread(values);
  return values.length > 1 ? `${s.median.toFixed(1)} (${s.min.toFixed(1)}–${s.max.toFixed(1)})` : s.median.toFixed(1);
}
