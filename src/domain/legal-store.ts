/**
 * Legal storage (LEGAL_STORAGE_URL): where GDPR export archives and the erasure ledger's
 * mirror live, kept apart from backups so that pruning backups never touches legal records.
 */
import { openObjectStore, type ObjectStore } from '../adapters/storage/index.ts';
import type { Config } from '../config/index.ts';

export function openLegalStore(config: Config): ObjectStore {
  return openObjectStore(config.legalStorageUrl, {
    settingName: 'LEGAL_STORAGE_URL',
    ...(config.s3.endpoint === undefined ? {} : { endpoint: config.s3.endpoint }),
    forcePathStyle: config.s3.forcePathStyle,
    region: config.s3.region,
  });
}

/** Opens legal storage for one piece of work and always releases it. */
export async function withLegalStore<T>(config: Config, fn: (store: ObjectStore) => Promise<T>): Promise<T> {
  const store = openLegalStore(config);
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}
