/**
 * Backup storage (BACKUP_STORAGE_URL): `file://$STATE_DIR/backups` by default, or S3.
 */
import { openObjectStore, type ObjectStore } from '../../adapters/storage/index.ts';
import type { Config } from '../../config/index.ts';

export function openBackupStore(config: Config): ObjectStore {
  return openObjectStore(config.backupStorageUrl, {
    settingName: 'BACKUP_STORAGE_URL',
    ...(config.s3.endpoint === undefined ? {} : { endpoint: config.s3.endpoint }),
    forcePathStyle: config.s3.forcePathStyle,
    region: config.s3.region,
  });
}

/** Opens the store for one piece of work and always releases it. */
export async function withBackupStore<T>(config: Config, fn: (store: ObjectStore) => Promise<T>): Promise<T> {
  const store = openBackupStore(config);
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}
