/**
 * Benchmark 6, propagation: three `shipshape serve` processes on one database; a
 * maintenance toggle or a cache clear is made through one of them (round robin) and
 * every instance's `GET /config` is polled until it shows the change. The delay is
 * measured from the moment the admin request is sent, so the instance that took the
 * change is the in-run baseline (it applies its own change at once) and the other two
 * show what propagation adds. The target is issue 5's "seen by all three within one second".
 */
import { randomBytes } from 'node:crypto';
import { createBenchDatabase } from './lib/database.ts';
import { Prng } from './lib/prng.ts';
import { startShipshape, type ChildServer } from './lib/processes.ts';
import { formatNumber, spread } from './lib/stats.ts';
import type { BenchmarkContext, BenchmarkReport, MeasurableBenchmark } from './lib/types.ts';

const INSTANCES = 3;
const TARGET_MS = 1_000;
/** A change not seen within this long counts as lost. */
const GIVE_UP_MS = 10_000;
/** Between polls of one instance: fine enough to resolve milliseconds, coarse enough not to starve the servers. */
const POLL_GAP_MS = 2;

const plans = {
  full: { trials: 30, maxPauseMs: 1_500 },
  quick: { trials: 2, maxPauseMs: 200 },
} as const;

type Change = 'maintenance' | 'cacheClear';
const changeLabels: Record<Change, string> = {
  maintenance: 'Maintenance toggle (`POST /admin/maintenance`)',
  cacheClear: 'Cache clear (`POST /admin/cache/clear`, scope tasks)',
};

interface Trial {
  readonly change: Change;
  /** Index of the instance that took the admin request. */
  readonly via: number;
  /** Per instance: ms from sending the admin request until its /config showed the change; undefined if never. */
  readonly seenAfterMs: ReadonlyArray<number | undefined>;
}

export const benchmark: MeasurableBenchmark = {
  name: 'propagation',
  order: 6,
  title: 'Propagation',
  description:
    'Three `shipshape serve` processes on one database. A maintenance toggle and a cache clear are made through one of them ' +
    "(round robin) while every instance's `GET /config` is polled; the delay runs from sending the admin request until each " +
    'instance shows the change. The instance that took the request is the in-run baseline; the target is one second.',
  run: runPropagationBenchmark,
};

async function runPropagationBenchmark(context: BenchmarkContext): Promise<BenchmarkReport> {
  const plan = context.quick ? plans.quick : plans.full;
  const database = await createBenchDatabase(context.adminUrl, 'propagation');
  const adminToken = randomBytes(24).toString('hex');
  const servers: ChildServer[] = [];
  try {
    context.progress(`propagation: starting ${INSTANCES} instances`);
    const started = await Promise.allSettled(Array.from({ length: INSTANCES }, () => startShipshape(database.url, { ADMIN_TOKEN: adminToken })));
    for (const result of started) if (result.status === 'fulfilled') servers.push(result.value);
    const failure = started.find((result) => result.status === 'rejected');
    if (failure) throw failure.reason;

    const prng = new Prng(6);
    const trials: Trial[] = [];
    let maintenanceOn = false;
    for (let index = 0; index < plan.trials * 2; index += 1) {
      const change: Change = index % 2 === 0 ? 'maintenance' : 'cacheClear';
      const via = Math.floor(index / 2) % INSTANCES;
      // Random pauses keep the changes from locking into step with the instances' own timers.
      await sleep(prng.int(plan.maxPauseMs));
      if (change === 'maintenance') {
        maintenanceOn = !maintenanceOn;
        trials.push(await measure(servers, via, adminToken, change, { enabled: maintenanceOn }));
      } else {
        trials.push(await measure(servers, via, adminToken, change, { scope: 'tasks' }));
      }
      for (const server of servers) server.assertRunning();
      if ((index + 1) % 10 === 0) context.progress(`propagation: ${index + 1}/${plan.trials * 2} changes measured`);
    }
    return report(plan.trials, trials, servers);
  } finally {
    await Promise.all(servers.map((server) => server.stop().catch(() => undefined)));
    await database.drop();
  }
}

async function measure(servers: readonly ChildServer[], via: number, adminToken: string, change: Change, body: object): Promise<Trial> {
  const before = await Promise.all(servers.map((server) => readConfig(server.url)));
  const predicates = before.map((config) =>
    change === 'maintenance' ? (next: ConfigView) => next.maintenance !== config.maintenance : (next: ConfigView) => next.tasksEpoch > config.tasksEpoch,
  );
  const sentAt = performance.now();
  const path = change === 'maintenance' ? '/admin/maintenance' : '/admin/cache/clear';
  const request = fetch(`${servers[via]!.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  }).then(async (response) => {
    const text = await response.text();
    if (!response.ok) throw new Error(`${path} answered ${response.status}: ${text.slice(0, 300)}`);
  });
  const seen = servers.map(async (server, index) => {
    const predicate = predicates[index]!;
    while (performance.now() - sentAt < GIVE_UP_MS) {
      if (predicate(await readConfig(server.url))) return performance.now() - sentAt;
      await sleep(POLL_GAP_MS);
    }
    return undefined;
  });
  const [, ...seenAfterMs] = await Promise.all([request, ...seen]);
  return { change, via, seenAfterMs };
}

interface ConfigView {
  readonly maintenance: boolean;
  readonly tasksEpoch: number;
}

async function readConfig(baseUrl: string): Promise<ConfigView> {
  const response = await fetch(`${baseUrl}/config`);
  const body: unknown = await response.json();
  const record = typeof body === 'object' && body !== null ? body : {};
  const maintenance =
    'maintenance' in record && typeof record.maintenance === 'object' && record.maintenance !== null && 'enabled' in record.maintenance
      ? record.maintenance.enabled === true
      : false;
  const epochs = 'cacheEpochs' in record && typeof record.cacheEpochs === 'object' && record.cacheEpochs !== null ? record.cacheEpochs : {};
  const tasksEpoch = 'tasks' in epochs && typeof epochs.tasks === 'number' ? epochs.tasks : 0;
  return { maintenance, tasksEpoch };
}

function report(trialsPerChange: number, trials: readonly Trial[], servers: readonly ChildServer[]): BenchmarkReport {
  const rows: string[][] = [];
  const notes: string[] = [];
  const summary: string[] = [];
  for (const change of ['maintenance', 'cacheClear'] as const) {
    const ofChange = trials.filter((trial) => trial.change === change);
    const own = ofChange.map((trial) => trial.seenAfterMs[trial.via]).filter((value): value is number => value !== undefined);
    const others = ofChange.flatMap((trial) => trial.seenAfterMs.filter((_, index) => index !== trial.via));
    const othersSeen = others.filter((value): value is number => value !== undefined);
    const allThree = ofChange.map((trial) =>
      trial.seenAfterMs.every((value) => value !== undefined) ? Math.max(...trial.seenAfterMs.map((value) => value ?? 0)) : Number.POSITIVE_INFINITY,
    );
    const withinTarget = allThree.filter((value) => value <= TARGET_MS).length;
    const ownSpread = spread(own);
    const otherSpread = spread(othersSeen);
    const allSpread = spread(allThree.filter(Number.isFinite));
    summary.push(
      `${change === 'maintenance' ? 'Maintenance toggle' : 'Cache clear'} seen by all three after ${formatNumber(allSpread.median)} ms median, ${formatNumber(allSpread.max)} ms max (${withinTarget} of ${ofChange.length} within ${TARGET_MS} ms).`,
    );
    rows.push([
      changeLabels[change],
      String(ofChange.length),
      `${formatNumber(ownSpread.median)} (${formatNumber(ownSpread.min)}–${formatNumber(ownSpread.max)})`,
      `${formatNumber(otherSpread.median)} (${formatNumber(otherSpread.min)}–${formatNumber(otherSpread.max)})`,
      `${formatNumber(allSpread.median)} / ${formatNumber(allSpread.max)}`,
      `${withinTarget} of ${ofChange.length}`,
      String(ofChange.length * INSTANCES - own.length - othersSeen.length),
    ]);
    if (own.length > 0 && othersSeen.length > 0) {
      notes.push(
        `${changeLabels[change]}: the other instances showed it ${formatNumber(otherSpread.median)} ms (median) after the request was sent, ` +
          `the instance that took it ${formatNumber(ownSpread.median)} ms; the slowest of the three took ${formatNumber(allSpread.max)} ms at worst.`,
      );
    }
  }
  notes.push(
    "Delays are measured from sending the admin request. The instance that took it applies the change before answering, so its delay is at most that request's own latency.",
    `Each instance's GET /config is polled every ~${POLL_GAP_MS} ms in a loop, so delays are resolved to a few milliseconds. Pauses between changes are random (seeded) so that changes do not lock into step with the instances' timers.`,
  );
  return {
    size: `${INSTANCES} instances, ${trialsPerChange} maintenance toggles and ${trialsPerChange} cache clears`,
    sections: [
      {
        heading: 'Delay until every instance shows the change',
        intro: `Milliseconds from sending the admin request: median (min–max). "All three" is, per change, the delay until the last of the three showed it (median / max over changes); the target is ${TARGET_MS} ms.`,
        table: {
          columns: [
            'Change',
            'Changes',
            'Instance that took it, ms',
            'Other instances, ms',
            'All three: median / max ms',
            `Within ${TARGET_MS} ms`,
            'Not seen within 10 s',
          ],
          rows,
        },
      },
      { heading: 'Findings and caveats', notes },
    ],
    commands: [
      `# ${INSTANCES} API servers (their own processes) on one benchmark database`,
      ...servers.map((server) => server.command),
      `# then, per change: POST /admin/maintenance {"enabled":true|false} or POST /admin/cache/clear {"scope":"tasks"} to one of them,`,
      `# while GET /config is polled on all three (bench/propagation.ts)`,
    ],
    measurements: trials.length,
    summary,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
