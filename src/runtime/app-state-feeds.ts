/**
 * How an instance hears that shared state (maintenance, cache epochs) changed elsewhere,
 * within milliseconds instead of at the next poll:
 *
 * - PostgreSQL LISTEN/NOTIFY: triggers on `app_state` and `cache_epochs` (migration 0004)
 *   NOTIFY in the transaction that makes the change, whoever makes it — an instance, the CLI,
 *   a DBA — and the notification is delivered at commit.
 * - Redis pub/sub, when REDIS_URL is set: whoever changes state through Shipshape publishes
 *   after committing. It still works where NOTIFY cannot (PgBouncer in transaction mode
 *   accepts LISTEN but never delivers).
 *
 * Both only say "re-read now"; the state itself is always read from the database, so a
 * duplicate or a stray message costs one query and nothing else. Messages sent while a
 * listener is disconnected are lost, so every reconnect re-reads too, and the watcher's poll
 * stays underneath as the safety net.
 */
import type { Redis } from 'ioredis';
import { connectRedis, subscribe } from '../adapters/redis.ts';
import type { Config } from '../config/index.ts';
import type { Database } from '../db/index.ts';
import { startListener, type Listener } from '../db/listener.ts';
import { APP_STATE_NOTIFY_CHANNEL } from '../domain/app-state.ts';
import { appStateChannel } from '../domain/app-state-announce.ts';
import type { AppStateWatcher } from '../domain/app-state-watcher.ts';
import { SESSIONS_NOTIFY_CHANNEL, type SessionCache } from '../domain/session-cache.ts';
import type { Logger } from '../log.ts';
import { describeError } from '../errors.ts';

export interface AppStateFeeds {
  /** What is carrying change notifications, for logs and tests: `postgres`, `redis`. */
  readonly transports: readonly string[];
  /** Tells every instance to re-read now. Call after committing a change (the NOTIFY trigger needs no help). */
  announce(): Promise<void>;
  close(): Promise<void>;
}

export interface AppStateFeedOptions {
  readonly config: Pick<Config, 'redisPrefix' | 'database' | 'databaseUrl'>;
  readonly database: Database;
  readonly watcher: AppStateWatcher;
  readonly logger: Logger;
  /** A command connection (to publish) and a subscriber connection, when Redis is configured. */
  readonly redis?: { readonly publisher: Redis; readonly subscriber: Redis } | undefined;
  /** How long the LISTEN self-test waits for its own NOTIFY. */
  readonly probeTimeoutMs?: number;
  /**
   * Sessions cached in memory, used only while session revocations (NOTIFY on
   * `shipshape_sessions`, same connection) are known to arrive: see src/domain/session-cache.ts.
   */
  readonly sessions?: SessionCache | undefined;
  /** How often a trusted session cache re-checks that notifications still arrive. */
  readonly heartbeatMs?: number;
}

/** A NOTIFY to ourselves that takes longer than this means the LISTEN connection cannot be relied on. */
const HEARTBEAT_TIMEOUT_MS = 2_000;
const DEFAULT_HEARTBEAT_MS = 2_000;

export async function startAppStateFeeds(options: AppStateFeedOptions): Promise<AppStateFeeds> {
  const { database, watcher, logger } = options;
  const transports: string[] = [];
  const closers: Array<() => Promise<void>> = [];
  let probe: Promise<void> | undefined;

  // PGlite is a single backend behind our own wire server (src/db/embedded-wire.ts), which
  // relays the backend's output to whichever connection holds it at the time: a LISTEN there
  // is accepted but a NOTIFY never reaches the listening connection (tried: the self-test
  // below fails), so LISTEN is not attempted and polling covers it. The embedded database
  // also has exactly one API process (the one that owns the data directory), which refreshes
  // at once after its own writes; CLI changes reach it through the poll.
  if (database.kind === 'postgres' && options.config.databaseUrl) {
    const sessions = options.sessions;
    // Set once the self-test passed: from then on every (re)connect may trust the session cache again.
    let delivers = false;
    const listener: Listener = await startListener({
      connectionString: options.config.databaseUrl,
      channel: APP_STATE_NOTIFY_CHANNEL,
      alsoListen: sessions ? [SESSIONS_NOTIFY_CHANNEL] : [],
      connectTimeoutMs: options.config.database.connectTimeoutMs,
      logger,
      onNotification: (payload, channel) => {
        if (channel === SESSIONS_NOTIFY_CHANNEL) sessions?.changed(payload);
        else watcher.nudge();
      },
      onConnected: () => {
        watcher.nudge();
        // Revocations sent while the connection was down were lost: start the cache afresh.
        if (delivers) sessions?.trust();
      },
      onDisconnected: () => sessions?.distrust(),
    });
    transports.push('postgres');
    closers.push(() => listener.close());
    // Checked after start-up, not during it: a proxy that swallows notifications only costs speed.
    probe = (async () => {
      if (!listener.connected) return;
      const works = await listener.probe(database.pool, options.probeTimeoutMs ?? 5_000).catch(() => false);
      if (works) {
        logger.debug('LISTEN/NOTIFY delivers; shared state changes and session revocations arrive at once');
        delivers = true;
        if (listener.connected) sessions?.trust();
      } else {
        logger.warn(
          'a NOTIFY sent to ourselves did not arrive (PgBouncer in transaction mode?); relying on Redis pub/sub if configured, and on the APP_STATE_POLL_MS poll; sessions are not cached',
        );
      }
    })();
    if (sessions) {
      // A connection can die without telling us (a silent network partition); a NOTIFY to
      // ourselves every few seconds finds that out, and the cache is off until one returns.
      const heartbeat = setInterval(() => {
        if (!delivers || !listener.connected) return;
        listener.ping(HEARTBEAT_TIMEOUT_MS).then(
          (arrived) => {
            if (!arrived && sessions.active) {
              logger.warn('a NOTIFY to ourselves did not return on the LISTEN connection; sessions are read from the database until one does');
              sessions.distrust();
            } else if (arrived && !sessions.active && listener.connected) {
              sessions.trust();
            }
          },
          () => sessions.distrust(),
        );
      }, options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
      heartbeat.unref();
      closers.push(async () => {
        clearInterval(heartbeat);
        sessions.distrust();
      });
    }
  } else {
    logger.debug('embedded database: LISTEN/NOTIFY is not available; shared state is re-read by the poll');
  }

  const redis = options.redis;
  const channel = appStateChannel(options.config.redisPrefix);
  if (redis) {
    const handlers = { onMessage: () => watcher.nudge(), onReady: () => watcher.nudge() };
    if (await connectRedis(redis.subscriber)) {
      await subscribe(redis.subscriber, channel, handlers);
    } else {
      // Subscribes once Redis answers; until then the poll carries changes.
      subscribe(redis.subscriber, channel, handlers).catch((error: unknown) => logger.warn({ err: describeError(error) }, 'Redis SUBSCRIBE failed'));
    }
    transports.push('redis');
  }

  logger.info({ transports }, `shared state changes arrive via ${[...transports, 'poll'].join(', ')}`);

  return {
    transports,
    announce: async () => {
      if (!redis) return;
      // Best effort: the NOTIFY and the poll still carry the change if Redis is away.
      await redis.publisher
        .publish(channel, 'changed')
        .catch((error: unknown) => logger.warn({ err: describeError(error) }, 'could not publish the state change to Redis'));
    },
    close: async () => {
      // Closing the listener settles a self-test still waiting, so this never waits for it.
      for (const close of closers.reverse()) await close();
      await probe;
    },
  };
}
