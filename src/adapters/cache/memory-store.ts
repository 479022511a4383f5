/**
 * The in-process cache backend: an LRU bounded by the bytes it holds (keys and values are
 * strings, so their length is a fair measure) as well as by each entry's expiry.
 */
import { LRUCache } from 'lru-cache';
import type { CacheStore } from './types.ts';

export interface MemoryStoreOptions {
  /** Upper bound on the characters held in keys and values together. */
  readonly maxChars?: number;
}

const DEFAULT_MAX_CHARS = 64 * 1024 * 1024;

export function createMemoryStore(options: MemoryStoreOptions = {}): CacheStore {
  const entries = new LRUCache<string, string>({
    maxSize: options.maxChars ?? DEFAULT_MAX_CHARS,
    sizeCalculation: (value, key) => value.length + key.length,
    // Every entry is set with its own ttl; expired ones are dropped when touched.
    ttl: 0,
  });
  return {
    kind: 'memory',
    get: async (key) => entries.get(key),
    set: async (key, value, ttlMs) => {
      entries.set(key, value, { ttl: ttlMs });
    },
    deleteByPrefix: async (prefix) => {
      let removed = 0;
      for (const key of [...entries.keys()]) {
        if (key.startsWith(prefix) && entries.delete(key)) removed += 1;
      }
      return removed;
    },
    close: async () => entries.clear(),
  };
}
