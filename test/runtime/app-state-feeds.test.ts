/**
 * Shared-state changes reach other instances through LISTEN/NOTIFY and Redis pub/sub, not
 * only through the poll (the watchers here poll once a minute, so only a notification can
 * deliver a change in time), and a dropped LISTEN connection comes back by itself.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { closeRedis, createRedis } from '../../src/adapters/redis.ts';
import { startListener } from '../../src/db/listener.ts';
import { APP_STATE_NOTIFY_CHANNEL, bumpCacheEpoch, setMaintenance, type AppState } from '../../src/domain/app-state.ts';
import { AppStateWatcher } from '../../src/domain/app-state-watcher.ts';
import { createLogger } from '../../src/log.ts';
import { startAppStateFeeds, type AppStateFeeds } from '../../src/runtime/app-state-feeds.ts';
import { openMigratedDatabase, type MigratedDatabase } from '../helpers/migrated-database.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = createLogger('silent');
const SLOW_POLL_MS = 60_000;

/**
 * The watchers poll only every SLOW_POLL_MS, so a change that arrives well before that was
 * carried by a notification. Waiting most of that interval is not a claim about speed; it
 * leaves a busy machine all the room it needs.
 */
const NOTIFICATION_WINDOW_MS = SLOW_POLL_MS - 10_000;

/** Resolves with the first state `watcher` reports that satisfies `predicate`. */
function seen(watcher: AppStateWatcher, predicate: (state: AppState) => boolean, what: string, timeoutMs = NOTIFICATION_WINDOW_MS): Promise<AppState> {
  return new Promise((resolve, reject) => {
    if (predicate(watcher.current)) return resolve(watcher.current);
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`${what} did not arrive within ${timeoutMs} ms, so no notification carried it`));
    }, timeoutMs);
    const unsubscribe = watcher.onChange((state) => {
      if (!predicate(state)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(state);
    });
  });
}

interface Instance {
  watcher: AppStateWatcher;
  feeds: AppStateFeeds;
  close(): Promise<void>;
}

async function startInstance(db: MigratedDatabase, redisPrefix?: string): Promise<Instance> {
  const watcher = new AppStateWatcher(db.database.pool, logger, SLOW_POLL_MS);
  await watcher.start();
  const redis = redisPrefix
    ? {
        publisher: await createRedis({ url: REDIS_URL, name: 'test-publisher', logger }),
        subscriber: await createRedis({ url: REDIS_URL, name: 'test-subscriber', logger, subscriber: true }),
      }
    : undefined;
  if (redis) await redis.publisher.connect();
  const feeds = await startAppStateFeeds({
    config: { ...db.config, redisPrefix: redisPrefix ?? db.config.redisPrefix },
    database: db.database,
    watcher,
    logger,
    redis,
  });
  return {
    watcher,
    feeds,
    close: async () => {
      await feeds.close();
      watcher.stop();
      if (redis) await Promise.all([closeRedis(redis.publisher), closeRedis(redis.subscriber)]);
    },
  };
}

describe('on PostgreSQL: LISTEN/NOTIFY', () => {
  let db: MigratedDatabase;
  let instances: Instance[] = [];
  before(async () => {
    db = await openMigratedDatabase();
    instances = [await startInstance(db), await startInstance(db)];
  });
  after(async () => {
    for (const instance of instances) await instance.close();
    await db.close();
  });

  test('maintenance and cache epoch changes reach every watcher without waiting for the poll', async () => {
    assert.deepEqual(instances[0]!.feeds.transports, ['postgres']);
    const arrivals = instances.map(({ watcher }) => seen(watcher, (state) => state.maintenance.enabled, 'maintenance on'));
    await setMaintenance(db.database.pool, { enabled: true, message: 'back soon', setBy: 'test' });
    for (const state of await Promise.all(arrivals)) assert.equal(state.maintenance.message, 'back soon');

    const epochArrivals = instances.map(({ watcher }) => seen(watcher, (state) => (state.cacheEpochs.tasks ?? 0) >= 1, 'tasks epoch'));
    const epoch = await bumpCacheEpoch(db.database.pool, 'tasks', 'test');
    for (const state of await Promise.all(epochArrivals)) assert.equal(state.cacheEpochs.tasks, epoch);
  });

  test('a NOTIFY sent to ourselves comes back (the start-up self-test)', async () => {
    const listener = await startListener({
      connectionString: db.config.databaseUrl!,
      channel: APP_STATE_NOTIFY_CHANNEL,
      connectTimeoutMs: 5_000,
      logger,
      onNotification: () => undefined,
      onConnected: () => undefined,
    });
    try {
      assert.equal(await listener.probe(db.database.pool, 5_000), true);
    } finally {
      await listener.close();
    }
  });

  test('a LISTEN connection that is killed reconnects, and later changes still arrive', async () => {
    const pool = db.database.pool;
    const before = await pool.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = 'shipshape-listen' AND datname = current_database()`,
    );
    assert.equal(before.rows.length, instances.length);
    await pool.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [before.rows.map((row) => row.pid)]);
    const oldPids = new Set(before.rows.map((row) => row.pid));
    for (let waited = 0; ; waited += 100) {
      const now = await pool.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE application_name = 'shipshape-listen' AND datname = current_database()`,
      );
      if (now.rows.length === instances.length && now.rows.every((row) => !oldPids.has(row.pid))) break;
      assert.ok(waited < 20_000, 'listeners did not reconnect');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const arrivals = instances.map(({ watcher }) => seen(watcher, (state) => !state.maintenance.enabled, 'maintenance off'));
    await setMaintenance(pool, { enabled: false, setBy: 'test' });
    await Promise.all(arrivals);
  });
});

describe('on the embedded database: Redis pub/sub', () => {
  let db: MigratedDatabase;
  let instances: Instance[] = [];
  before(async () => {
    db = await openMigratedDatabase({ embedded: true });
    const prefix = `test-${randomUUID()}:`;
    instances = [await startInstance(db, prefix), await startInstance(db, prefix)];
  });
  after(async () => {
    for (const instance of instances) await instance.close();
    await db.close();
  });

  test('a change announced by one instance is re-read by the others at once; LISTEN is not attempted', async () => {
    const [writer, reader] = instances;
    assert.deepEqual(reader!.feeds.transports, ['redis']);
    const arrival = seen(reader!.watcher, (state) => state.maintenance.enabled, 'maintenance on via Redis');
    await setMaintenance(db.database.pool, { enabled: true, message: 'via redis', setBy: 'test' });
    await writer!.feeds.announce();
    assert.equal((await arrival).maintenance.message, 'via redis');
  });
});
