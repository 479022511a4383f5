/**
 * The parts of a running server that keep it in step with the others: the task-list cache
 * (in memory, or in Redis shared by every instance), the change feeds that carry maintenance
 * and cache-clear changes between instances, and push delivery. Opened after the app state
 * watcher and closed before it.
 */
import { createMemoryStore, createRedisStore, type CacheStore } from '../adapters/cache/index.ts';
import { ExpoPushClient } from '../adapters/expo-push.ts';
import { closeRedis, connectRedis, createRedis, type Redis } from '../adapters/redis.ts';
import type { Config } from '../config/index.ts';
import type { Database } from '../db/index.ts';
import type { AppStateWatcher } from '../domain/app-state-watcher.ts';
import { SessionCache } from '../domain/session-cache.ts';
import { TaskListCache } from '../domain/task-list-cache.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { redactUrl } from '../redact.ts';
import { startAppStateFeeds, type AppStateFeeds } from './app-state-feeds.ts';
import { NotificationWorker } from './notification-worker.ts';

export interface LiveOperations {
  readonly cache: TaskListCache;
  /** Authenticated sessions, used while revocations are known to arrive (src/domain/session-cache.ts). */
  readonly sessions: SessionCache;
  readonly feeds: AppStateFeeds;
  readonly push: ExpoPushClient;
  readonly notifications: NotificationWorker;
  close(): Promise<void>;
}

export async function startLiveOperations(options: { config: Config; database: Database; logger: Logger; appState: AppStateWatcher }): Promise<LiveOperations> {
  const { config, database, logger, appState } = options;
  const closers: Array<() => Promise<void> | void> = [];
  const close = async () => {
    for (const closer of closers.reverse()) await closer();
  };
  try {
    let redis: { publisher: Redis; subscriber: Redis } | undefined;
    let store: CacheStore;
    if (config.redisUrl) {
      const publisher = await createRedis({ url: config.redisUrl, name: 'shipshape-cache', logger });
      const subscriber = await createRedis({ url: config.redisUrl, name: 'shipshape-subscriber', logger, subscriber: true });
      closers.push(
        () => closeRedis(publisher),
        () => closeRedis(subscriber),
      );
      if (!(await connectRedis(publisher))) {
        logger.warn({ redis: redactUrl(config.redisUrl) }, 'Redis did not answer at start-up; serving from the database until it does');
      }
      redis = { publisher, subscriber };
      store = createRedisStore({ redis: publisher, prefix: config.redisPrefix });
    } else {
      // Characters, for one-byte strings (JSON of Latin text) about the bytes held.
      store = createMemoryStore({ maxChars: config.taskListCacheMaxMb * 1024 * 1024 });
    }
    closers.push(() => store.close());

    const cache = new TaskListCache({ db: database.pool, store, logger, epochs: () => appState.current.cacheEpochs });
    if (store.kind === 'memory') {
      // Each instance holds its own entries: free those of a cleared scope when the epoch moves.
      // (Correctness does not wait for this: the epochs are part of every key.)
      const unsubscribe = appState.onChange((next, previous) => {
        for (const [scope, epoch] of Object.entries(next.cacheEpochs)) {
          if (previous.cacheEpochs[scope] === epoch) continue;
          cache.flush(scope).catch((error: unknown) => logger.warn({ scope, err: describeError(error) }, 'could not flush the cache'));
        }
      });
      closers.push(unsubscribe);
    }

    const sessions = new SessionCache();
    const feeds = await startAppStateFeeds({ config, database, watcher: appState, logger, redis, sessions });
    closers.push(() => feeds.close());

    const push = new ExpoPushClient({ pushUrl: config.push.expoPushUrl, accessToken: config.push.expoAccessToken });
    const notifications = new NotificationWorker({ pool: database.pool, push, logger });
    notifications.start();
    closers.push(() => notifications.close());

    logger.info({ cache: store.kind }, `task-list cache: ${store.kind === 'redis' ? 'Redis, shared by every instance' : 'in-process LRU'}`);
    return { cache, sessions, feeds, push, notifications, close };
  } catch (error) {
    await close();
    throw error;
  }
}
