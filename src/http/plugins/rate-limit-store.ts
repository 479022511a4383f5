/**
 * Where @fastify/rate-limit counts: in Redis while Redis answers, so limits hold across every
 * instance, and in this process while it does not — so a Redis outage never blocks a sign-in
 * (issue 11: with the limiter failing closed, login, register and password reset answered 500
 * after 1–10 s while Redis was down).
 *
 * A command is never queued for a Redis that is not connected: while the connection is down,
 * every count goes straight to the local store; a command sent to a Redis that stalls gives up
 * after the connection's command timeout and that count, too, is made locally. The first
 * fallback of the process is logged and alerted (issue type infrastructure, warning) once; every
 * return to Redis is logged. Counters made locally during an outage are per instance and are not
 * carried into Redis afterwards: the protections that must not be evictable (login back-off,
 * reset-email budget) live in the database.
 */
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { Alert } from '../../adapters/alerts/index.ts';
import type { Logger } from '../../log.ts';

interface StoreResult {
  current: number;
  ttl: number;
}
type StoreCallback = (error: Error | null, result?: StoreResult) => void;

/** Counters the local store keeps; the oldest are forgotten first. */
const LOCAL_ENTRIES = 10_000;

/** INCR with a window set on the first hit; answers the count and the window left (ms). */
const INCREMENT = `
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {current, ttl}
`;

export interface FallbackStoreOptions {
  /** A command connection: no offline queue, a command timeout (adapters/redis.ts). */
  readonly redis: Redis | undefined;
  /** Prefix of every key in Redis (REDIS_PREFIX + `rate-limit:`). */
  readonly nameSpace: string;
  readonly logger: Logger;
  /** Where the one fallback alert goes; the log only without it. */
  readonly alert?: ((alert: Alert) => Promise<unknown>) | undefined;
}

/** Fixed windows counted in this process. */
class LocalCounters {
  readonly #entries = new LRUCache<string, { count: number; endsAt: number }>({ max: LOCAL_ENTRIES });

  increment(key: string, windowMs: number): StoreResult {
    const now = Date.now();
    let entry = this.#entries.get(key);
    if (entry === undefined || entry.endsAt <= now) {
      entry = { count: 0, endsAt: now + windowMs };
      this.#entries.set(key, entry);
    }
    entry.count += 1;
    return { current: entry.count, ttl: entry.endsAt - now };
  }
}

/**
 * A store class for @fastify/rate-limit's `store` option (it constructs it itself). Routes
 * sharing the plugin's store share these counters; keys name the route (attempt-limits.ts).
 */
export function fallbackStore(options: FallbackStoreOptions): FastifyRateLimitStoreCtor {
  const local = new LocalCounters();
  let alerted = false;
  let usingLocal = false;

  const fellBack = (reason: string) => {
    if (usingLocal) return;
    usingLocal = true;
    options.logger.warn({ reason }, 'rate limits are counted in this process until Redis answers again');
    if (alerted || options.alert === undefined) return;
    alerted = true;
    options
      .alert({
        issueType: 'infrastructure',
        severity: 'warning',
        event: 'rate-limit.redis-fallback',
        title: 'Rate limits fell back to per-instance counters',
        text: `Redis did not answer (${reason}); sign-in keeps working and each instance counts its own attempts until Redis is back. This alert is sent once per process.`,
        dedupKey: 'shipshape-rate-limit-redis-fallback',
      })
      .catch(() => undefined);
  };
  const recovered = () => {
    if (!usingLocal) return;
    usingLocal = false;
    options.logger.info('rate limits are counted in Redis again');
  };

  class FallbackStore implements FastifyRateLimitStore {
    incr(key: string, callback: StoreCallback, timeWindow: number): void {
      const { redis } = options;
      if (redis === undefined) return callback(null, local.increment(key, timeWindow));
      if (redis.status !== 'ready') {
        fellBack(`connection ${redis.status}`);
        return callback(null, local.increment(key, timeWindow));
      }
      redis.eval(INCREMENT, 1, `${options.nameSpace}${key}`, String(timeWindow)).then(
        (result) => {
          const [current, ttl] = result as [number, number];
          recovered();
          callback(null, { current: Number(current), ttl: Number(ttl) });
        },
        (error: unknown) => {
          fellBack(error instanceof Error ? error.message : String(error));
          callback(null, local.increment(key, timeWindow));
        },
      );
    }

    child(): FallbackStore {
      return this;
    }
  }
  return FallbackStore;
}
