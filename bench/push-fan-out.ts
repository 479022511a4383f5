/**
 * Benchmark 5, push fan-out: a notification to 100,000 devices through Shipshape's send
 * job (`sendNotification` from src/domain/notifications.ts: freeze the audience, claim
 * chunks of 100, record each request before and after it, via `ExpoPushClient`) to the
 * loopback Expo server of test/fakes/expo.ts.
 *
 * - Rate limit off (at Expo and in our client): our own throughput, against the same
 *   client posting the same chunks with the same concurrency and no database (the
 *   adapter-only ceiling), interleaved round by round.
 * - Rate limit on (600/s, Expo's real limit, and our client's default): we should sit at
 *   the limit without being answered 429.
 */
import { hostname } from 'node:os';
import { EXPO_MAX_MESSAGES_PER_SECOND, ExpoPushClient, type ExpoMessage } from '../src/adapters/expo-push.ts';
import { createNotificationJob, newRunner, runNotificationJob, type NotificationRequest } from '../src/domain/notifications.ts';
import { startFakeExpo, type FakeExpo } from '../test/fakes/expo.ts';
import { createBenchDatabase, type BenchDatabase } from './lib/database.ts';
import { seed, userId, userIdSql } from './lib/seed.ts';
import { formatNumber, formatRatio, formatSpread, spread, type Spread } from './lib/stats.ts';
import type { BenchmarkContext, BenchmarkReport, MeasurableBenchmark } from './lib/types.ts';

interface Plan {
  readonly devices: number;
  readonly warmupDevices: number;
  readonly repeats: number;
}

const FULL: Plan = { devices: 100_000, warmupDevices: 2_000, repeats: 3 };
const QUICK: Plan = { devices: 1_000, warmupDevices: 100, repeats: 1 };

/** What the job runner uses unless told otherwise; the ceiling uses the same. */
const CONCURRENCY = 4;
const UNLIMITED = 1_000_000_000;

interface SendRun {
  readonly seconds: number;
  readonly planSeconds: number;
  readonly notifications: number;
  readonly rate: number;
}

export const benchmark: MeasurableBenchmark = {
  name: 'push-fan-out',
  order: 5,
  title: 'Push fan-out',
  description:
    "A notification to 100,000 devices through Shipshape's send job to the loopback Expo server (test/fakes/expo.ts). " +
    'Rate limit off: our own throughput, against the same Expo client posting the same chunks with no database. ' +
    'Rate limit on (600/s): we should sit at the limit without 429s.',
  run: runPushBenchmark,
};

async function runPushBenchmark(context: BenchmarkContext): Promise<BenchmarkReport> {
  const plan = context.quick ? QUICK : FULL;
  const database = await createBenchDatabase(context.adminUrl, 'push');
  let expo: FakeExpo | undefined;
  try {
    context.progress(`push-fan-out: seeding ${plan.devices.toLocaleString('en-US')} users with one device each`);
    await seed(database.pool, { users: plan.devices, tasksPerUser: 0 });
    await database.pool.query(
      `INSERT INTO devices (token, user_id, platform)
       SELECT 'ExponentPushToken[bench-' || n || ']', ${userIdSql('n')}, CASE WHEN n % 2 = 0 THEN 'ios' ELSE 'android' END
         FROM generate_series(1, $1::int) AS n`,
      [plan.devices],
    );
    await database.pool.query('ANALYZE devices');
    expo = await startFakeExpo({ rateLimit: false });
    const unlimited = new ExpoPushClient({ pushUrl: expo.pushUrl, messagesPerSecond: UNLIMITED });
    const messages = Array.from({ length: plan.devices }, (_, index) => message(`ExponentPushToken[bench-${index + 1}]`));

    const warmupUsers = Array.from({ length: plan.warmupDevices }, (_, index) => userId(index + 1));
    await sendJob(database, unlimited, { userIds: warmupUsers });
    await adapterOnly(unlimited, messages.slice(0, plan.warmupDevices));

    const shipshape: SendRun[] = [];
    const ceiling: SendRun[] = [];
    for (let round = 0; round < plan.repeats; round += 1) {
      const steps = [async () => shipshape.push(await sendJob(database, unlimited, {})), async () => ceiling.push(await adapterOnly(unlimited, messages))];
      if (round % 2 === 1) steps.reverse();
      for (const step of steps) await step();
      context.progress(`push-fan-out: round ${round + 1}/${plan.repeats} (no rate limit) done`);
    }

    context.progress(
      `push-fan-out: ${plan.devices.toLocaleString('en-US')} notifications at ${EXPO_MAX_MESSAGES_PER_SECOND}/s (about ${Math.ceil(plan.devices / EXPO_MAX_MESSAGES_PER_SECOND)} s)`,
    );
    // A fresh Expo, so its 429 count and busiest second belong to this send alone.
    await expo.close();
    expo = await startFakeExpo({ rateLimit: EXPO_MAX_MESSAGES_PER_SECOND });
    const limitedClient = new ExpoPushClient({ pushUrl: expo.pushUrl });
    const perSecond: number[] = [];
    const limited = await sendJob(database, limitedClient, {}, perSecond);
    return report(plan, { shipshape, ceiling, limited, perSecond, rejected: expo.rateLimited, peak: expo.peakPerSecond });
  } finally {
    await expo?.close();
    await database.drop();
  }
}

function message(token: string): ExpoMessage {
  return { to: token, title: 'Bench', body: 'A benchmark notification', priority: 'default' };
}

/**
 * One job from creation (audience frozen into chunks) to its last chunk settled. With
 * `perSecond`, notifications settled in each whole second of the send are appended to it.
 */
async function sendJob(
  database: BenchDatabase,
  client: ExpoPushClient,
  audience: Pick<NotificationRequest, 'userIds'>,
  perSecond?: number[],
): Promise<SendRun> {
  const started = performance.now();
  const { job } = await createNotificationJob(database.pool, { title: 'Bench', body: 'A benchmark notification', requestedBy: 'bench', ...audience });
  const planned = performance.now();
  let second = 1;
  let settledAtLastSecond = 0;
  let settled = 0;
  const finished = await runNotificationJob(database.pool, client, job.id, {
    runner: newRunner({ pid: process.pid, host: hostname() }),
    concurrency: CONCURRENCY,
    onProgress: ({ settledChunks }) => {
      settled = settledChunks;
      while (perSecond && performance.now() - planned >= second * 1000) {
        perSecond.push((settled - settledAtLastSecond) * 100);
        settledAtLastSecond = settled;
        second += 1;
      }
    },
  });
  const seconds = (performance.now() - started) / 1000;
  return { seconds, planSeconds: (planned - started) / 1000, notifications: finished.tickets.ok, rate: finished.tickets.ok / seconds };
}

/** The same client, chunks and concurrency with no job, no database: what the adapter alone can do. */
async function adapterOnly(client: ExpoPushClient, messages: readonly ExpoMessage[]): Promise<SendRun> {
  const started = performance.now();
  let next = 0;
  let accepted = 0;
  const worker = async () => {
    while (next < messages.length) {
      const chunk = messages.slice(next, next + 100);
      next += 100;
      const outcome = await client.send(chunk);
      if (outcome.kind === 'accepted') accepted += outcome.tickets.length;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - started) / 1000;
  return { seconds, planSeconds: 0, notifications: accepted, rate: accepted / seconds };
}

function report(
  plan: Plan,
  results: { shipshape: SendRun[]; ceiling: SendRun[]; limited: SendRun; perSecond: number[]; rejected: number; peak: number },
): BenchmarkReport {
  const row = (label: string, runs: readonly SendRun[]) => [
    label,
    String(runs.length),
    formatNumber(spread(runs.map((run) => run.notifications)).median),
    formatSpread(spread(runs.map((run) => run.seconds))),
    runs.some((run) => run.planSeconds > 0) ? formatSpread(spread(runs.map((run) => run.planSeconds))) : '–',
    formatSpread(spread(runs.map((run) => run.rate))),
  ];
  const ratio: Spread = spread(results.shipshape.map((run, index) => run.rate / (results.ceiling[index]?.rate ?? Number.NaN)).filter(Number.isFinite));
  // The first and last seconds are ramp-up and tail; the steady state is what "sits at the limit" means.
  const steady = results.perSecond.length > 2 ? results.perSecond.slice(1, -1) : results.perSecond;
  const steadySpread = spread(steady);
  const notes = [
    `Without a rate limit Shipshape's send job reaches ${formatRatio(ratio)} of the adapter-only ceiling (per round, median (min–max)). ` +
      'The difference is the job machinery that makes a send resumable and at-most-once: the audience frozen into rows, and per chunk a claim, a `sending` commit before the request and the tickets committed after it.',
    `With Expo's limit on, the send settled ${formatNumber(steadySpread.median)} notifications per second in its steady state (median; ${formatNumber(steadySpread.min)}–${formatNumber(steadySpread.max)} over ${steady.length} whole seconds), ` +
      `${formatRatio({ median: steadySpread.median / EXPO_MAX_MESSAGES_PER_SECOND, min: steadySpread.min / EXPO_MAX_MESSAGES_PER_SECOND, max: steadySpread.max / EXPO_MAX_MESSAGES_PER_SECOND })} of the limit; ` +
      `the fake Expo answered ${results.rejected} request(s) with 429 and saw at most ${formatNumber(results.peak)} notifications in any one second.`,
    `Concurrency ${CONCURRENCY} requests in flight (the job runner's default), 100 messages per request. "Planning" is creating the job: the audience of every active device frozen into delivery rows and chunks.`,
  ];
  return {
    size: `${plan.devices.toLocaleString('en-US')} devices (one per user); ${plan.repeats} rounds without a rate limit after a ${plan.warmupDevices.toLocaleString('en-US')}-device warm-up, then one send at ${EXPO_MAX_MESSAGES_PER_SECOND}/s`,
    sections: [
      {
        heading: 'Throughput',
        intro:
          'Median (min–max) over the runs. Notifications counts ok tickets from Expo; the rate is notifications over the whole wall time, planning included.',
        table: {
          columns: ['Send', 'Runs', 'Notifications', 'Seconds', 'Planning, s', 'Notifications/s'],
          rows: [
            row('Shipshape send job, no rate limit', results.shipshape),
            row('Adapter only (ExpoPushClient, no database), no rate limit', results.ceiling),
            row(`Shipshape send job, Expo limit ${EXPO_MAX_MESSAGES_PER_SECOND}/s`, [results.limited]),
          ],
        },
      },
      { heading: 'Findings and caveats', notes },
    ],
    commands: [
      '# in the benchmark process; Expo is test/fakes/expo.ts on 127.0.0.1 (rate limit off, then 600/s)',
      `createNotificationJob(pool, { title, body, requestedBy: 'bench' }) then runNotificationJob(pool, new ExpoPushClient({ pushUrl, messagesPerSecond }), id, { concurrency: ${CONCURRENCY} })`,
      `# ceiling: ${CONCURRENCY} workers calling ExpoPushClient.send() with the same 100-message chunks`,
    ],
    measurements: results.shipshape.length + results.ceiling.length + 1,
    summary: [
      `No limit: ${formatNumber(spread(results.shipshape.map((run) => run.rate)).median)}/s, ${ratio.median.toFixed(2)} of the adapter alone.`,
      `Limit ${EXPO_MAX_MESSAGES_PER_SECOND}/s: ${formatNumber(steadySpread.median)}/s steady, ${results.rejected} × 429.`,
    ],
  };
}
