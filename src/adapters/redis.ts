/**
 * Redis connections for the shared cache and for pub/sub.
 *
 * Redis is an accelerator here, never the source of truth: the cache falls back to the
 * database and state changes still arrive by the poll. So command connections fail fast
 * while disconnected (no offline queue, short timeouts) instead of stalling requests, and
 * reconnect in the background. A subscriber connection is the exception: its SUBSCRIBE may
 * wait for the connection, and ioredis re-subscribes by itself after every reconnect.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../log.ts';
import { redactUrl } from '../redact.ts';

export type { Redis };

export interface RedisConnectionOptions {
  readonly url: string;
  /** Shown in logs and in CLIENT LIST, e.g. `shipshape-cache`. */
  readonly name: string;
  readonly logger: Logger;
  /** Subscriber connections queue SUBSCRIBE until connected; command connections fail fast. */
  readonly subscriber?: boolean;
}

const COMMAND_TIMEOUT_MS = 1_000;
const CONNECT_TIMEOUT_MS = 2_000;

/** A connection, not yet connected; ioredis is imported on the first call (only processes configured with Redis pay for it). */
export async function createRedis(options: RedisConnectionOptions): Promise<Redis> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(options.url, {
    connectionName: options.name,
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    enableOfflineQueue: options.subscriber === true,
    maxRetriesPerRequest: options.subscriber === true ? null : 1,
    ...(options.subscriber === true ? {} : { commandTimeout: COMMAND_TIMEOUT_MS }),
    retryStrategy: (times) => Math.min(times * 250, 5_000),
  });
  // ioredis emits 'error' on every failed reconnect; log the transitions, not each attempt.
  let healthy = true;
  const where = redactUrl(options.url);
  redis.on('error', (error: Error) => {
    if (!healthy) return;
    healthy = false;
    options.logger.warn({ redis: where, connection: options.name, err: error.message }, 'Redis unreachable; falling back until it returns');
  });
  redis.on('ready', () => {
    if (healthy) return;
    healthy = true;
    options.logger.info({ redis: where, connection: options.name }, 'Redis reachable again');
  });
  return redis;
}

/** Connects, waiting at most `timeoutMs`; false (and still reconnecting) when Redis did not answer. */
export async function connectRedis(redis: Redis, timeoutMs = CONNECT_TIMEOUT_MS): Promise<boolean> {
  if (redis.status === 'ready') return true;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const ready = new Promise<boolean>((resolve) => redis.once('ready', () => resolve(true)));
  if (redis.status === 'wait') redis.connect().catch(() => undefined);
  try {
    return await Promise.race([ready, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** QUIT politely, or drop the connection if Redis is not answering. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'ready') {
    await redis.quit().catch(() => redis.disconnect());
  } else {
    redis.disconnect();
  }
}

/**
 * Subscribes to `channel`. `onMessage` gets each message; `onReady` runs on every (re)connect,
 * because messages published while we were disconnected are gone.
 */
export async function subscribe(redis: Redis, channel: string, handlers: { onMessage(message: string): void; onReady(): void }): Promise<void> {
  redis.on('message', (from: string, message: string) => {
    if (from === channel) handlers.onMessage(message);
  });
  redis.on('ready', () => handlers.onReady());
  await redis.subscribe(channel);
}
