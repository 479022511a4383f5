/**
 * The shared cache backend: Redis, with every key under one prefix so several deployments
 * (or test runs) can share a server. Deleting by prefix walks the keyspace with SCAN, never
 * KEYS, so a large cache does not block Redis while it is cleared.
 */
import type { Redis } from '../redis.ts';
import type { CacheStore } from './types.ts';

export interface RedisStoreOptions {
  readonly redis: Redis;
  /** Prepended to every key, e.g. `shipshape:`. */
  readonly prefix: string;
}

const SCAN_BATCH = 500;

export function createRedisStore(options: RedisStoreOptions): CacheStore {
  const { redis, prefix } = options;
  return {
    kind: 'redis',
    get: async (key) => (await redis.get(prefix + key)) ?? undefined,
    set: async (key, value, ttlMs) => {
      await redis.set(prefix + key, value, 'PX', ttlMs);
    },
    deleteByPrefix: async (keyPrefix) => {
      const pattern = `${escapeGlob(prefix + keyPrefix)}*`;
      let cursor = '0';
      let removed = 0;
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_BATCH);
        cursor = next;
        // UNLINK frees memory in the background instead of blocking Redis on large values.
        if (keys.length > 0) removed += await redis.unlink(...keys);
      } while (cursor !== '0');
      return removed;
    },
    // The connection belongs to whoever created it.
    close: async () => undefined,
  };
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (character) => `\\${character}`);
}
