export type { CacheStore } from './types.ts';
export { createMemoryStore, type MemoryStoreOptions } from './memory-store.ts';
export { createRedisStore, type RedisStoreOptions } from './redis-store.ts';
