/**
 * A string key–value store with expiry: what the server cache needs from its backend,
 * whether that is this process's memory or a Redis shared by every instance.
 */
export interface CacheStore {
  /** `memory` holds entries for this process only; `redis` shares them with every instance. */
  readonly kind: 'memory' | 'redis';
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Removes every entry whose key starts with `prefix`; returns how many. */
  deleteByPrefix(prefix: string): Promise<number>;
  close(): Promise<void>;
}
