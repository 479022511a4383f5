/**
 * Object storage for backups, manifests and GDPR export archives, configured by URL:
 * `file:///abs/path` (a local folder) or `s3://bucket/prefix` (S3 or an S3-compatible store).
 */
import { FileObjectStore } from './file-store.ts';
import type { ObjectStore } from './object-store.ts';
import { S3ObjectStore, type S3Options } from './s3-store.ts';
import { parseStorageUrl } from './storage-url.ts';

export type { ObjectInfo, ObjectStore, PutOptions, PutResult } from './object-store.ts';
export type { S3Options } from './s3-store.ts';
export { parseStorageUrl, type StorageTarget } from './storage-url.ts';
export { redactUrl } from '../../redact.ts';
export { validateKey, validatePrefix } from './object-key.ts';

export interface StorageOptions extends S3Options {
  /**
   * The setting the URL came from, named in error messages so operators know what to fix,
   * e.g. "BACKUP_STORAGE_URL". S3 options are ignored for `file://` URLs.
   */
  readonly settingName?: string;
}

/**
 * Opens the store a storage URL names. Nothing is contacted yet; call `checkWritable()` to prove
 * the location works. Throws SHIP_ERR_STORAGE_URL_INVALID for a URL it cannot use and
 * SHIP_ERR_CONFIG for inconsistent S3 options.
 */
export function openObjectStore(url: string, options: StorageOptions = {}): ObjectStore {
  const target = parseStorageUrl(url, options.settingName);
  const settingName = options.settingName ?? 'the storage URL';
  return target.kind === 'file' ? new FileObjectStore(target, settingName) : new S3ObjectStore(target, options, settingName);
}
