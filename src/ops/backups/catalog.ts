/**
 * What backup storage holds: every backup folder, its manifest (if it got one) and its
 * latest verification. A backup is *good* when it has a valid manifest whose dump is
 * present and its latest verification, if any, passed. Only good backups are offered for
 * restore and counted by retention.
 */
import type { ObjectInfo, ObjectStore } from '../../adapters/storage/index.ts';
import { isShipError, ShipError, describeError } from '../../errors.ts';
import { backupIdFor, backupIdTime, checkBackupId, idSafeName, isBackupId } from './backup-id.ts';
import { dumpKey, manifestKey, manifestSchema, verificationKey, verificationRecordSchema, type BackupManifest, type VerificationRecord } from './manifest.ts';

export type BackupState =
  /** Manifest present and valid, dump present, not failed a later verification. */
  | 'good'
  /** A dump without a manifest: the upload or its verification never finished. */
  | 'incomplete'
  /** Its latest `db verify` found it damaged. */
  | 'failed-verification'
  /** A manifest that does not parse, or whose dump is gone. */
  | 'damaged';

export interface BackupEntry {
  readonly id: string;
  readonly state: BackupState;
  /** When the backup started (from the manifest, else from the id). */
  readonly createdAt: Date;
  readonly manifest: BackupManifest | undefined;
  readonly lastVerification: VerificationRecord | undefined;
  /** Every object stored under the backup's folder. */
  readonly objects: readonly ObjectInfo[];
  /** Why it is not good, in words. */
  readonly problem: string | undefined;
}

/** Every backup folder in the store, newest first. */
export async function listBackups(store: ObjectStore): Promise<BackupEntry[]> {
  const folders = new Map<string, ObjectInfo[]>();
  for (const object of await store.list('')) {
    const slash = object.key.indexOf('/');
    const id = slash === -1 ? '' : object.key.slice(0, slash);
    if (!isBackupId(id)) continue;
    const list = folders.get(id) ?? [];
    list.push(object);
    folders.set(id, list);
  }
  const entries: BackupEntry[] = [];
  for (const [id, objects] of folders) entries.push(await describeBackup(store, id, objects));
  return entries.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

async function describeBackup(store: ObjectStore, id: string, objects: ObjectInfo[]): Promise<BackupEntry> {
  const has = (key: string) => objects.find((object) => object.key === key);
  const createdFromId = backupIdTime(id) ?? objects[0]?.modifiedAt ?? new Date(0);
  const base = { id, objects, lastVerification: undefined, manifest: undefined, createdAt: createdFromId };
  if (has(manifestKey(id)) === undefined) {
    return {
      ...base,
      state: 'incomplete',
      problem: has(dumpKey(id)) ? 'a dump without a manifest: the backup never finished verifying' : 'no dump and no manifest',
    };
  }
  let manifest: BackupManifest;
  try {
    manifest = await readManifestObject(store, id);
  } catch (error) {
    if (isShipError(error) && error.code !== 'SHIP_ERR_BACKUP_NOT_VERIFIED') throw error;
    return { ...base, state: 'damaged', problem: describeError(error) };
  }
  const lastVerification = await readVerification(store, id);
  const createdAt = new Date(manifest.createdAt);
  const dump = has(manifest.dump.objectKey);
  if (dump === undefined)
    return { ...base, createdAt, manifest, lastVerification, state: 'damaged', problem: `its dump ${manifest.dump.objectKey} is missing` };
  if (lastVerification !== undefined && !lastVerification.ok) {
    return {
      ...base,
      createdAt,
      manifest,
      lastVerification,
      state: 'failed-verification',
      problem: lastVerification.problem ?? 'its latest verification failed',
    };
  }
  return { ...base, createdAt, manifest, lastVerification, state: 'good', problem: undefined };
}

/**
 * The manifest of a backup that may be restored. Throws SHIP_ERR_NOT_FOUND for an id that
 * is not in storage and SHIP_ERR_BACKUP_NOT_VERIFIED for one that never completed.
 */
export async function readManifest(store: ObjectStore, id: string): Promise<BackupManifest> {
  checkBackupId(id);
  if ((await store.head(manifestKey(id))) === undefined) {
    const leftovers = await store.list(`${id}/`);
    if (leftovers.length === 0) {
      throw new ShipError(
        'SHIP_ERR_NOT_FOUND',
        `There is no backup ${id} in ${store.location}. Run \`shipshape db backups\` to list the backups there (and check BACKUP_STORAGE_URL).`,
        {
          details: { backupId: id },
        },
      );
    }
    throw new ShipError(
      'SHIP_ERR_BACKUP_NOT_VERIFIED',
      `Backup ${id} is incomplete: it has a dump but no manifest, so its upload or verification never finished. It cannot be restored; choose another with \`shipshape db backups\`.`,
      { details: { backupId: id } },
    );
  }
  return readManifestObject(store, id);
}

async function readManifestObject(store: ObjectStore, id: string): Promise<BackupManifest> {
  let value: unknown;
  try {
    value = JSON.parse((await store.getBuffer(manifestKey(id))).toString('utf8'));
  } catch (error) {
    if (isShipError(error)) throw error;
    value = undefined;
  }
  const parsed = manifestSchema.safeParse(value);
  if (!parsed.success || parsed.data.id !== id) {
    throw new ShipError(
      'SHIP_ERR_BACKUP_NOT_VERIFIED',
      `The manifest of backup ${id} is unreadable (${parsed.success ? 'it names another backup' : (parsed.error.issues[0]?.message ?? 'not JSON')}). Choose another backup with \`shipshape db backups\`.`,
      {
        details: { backupId: id },
      },
    );
  }
  return parsed.data;
}

export async function readVerification(store: ObjectStore, id: string): Promise<VerificationRecord | undefined> {
  if ((await store.head(verificationKey(id))) === undefined) return undefined;
  try {
    const parsed = verificationRecordSchema.safeParse(JSON.parse((await store.getBuffer(verificationKey(id))).toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** A fresh id for a backup of `databaseName` starting now: the next free `-N` if the second is taken. */
export async function newBackupId(store: ObjectStore, startedAt: Date, databaseName: string): Promise<string> {
  for (let attempt = 1; attempt < 1000; attempt += 1) {
    const id = backupIdFor(startedAt, databaseName, attempt);
    if ((await store.list(`${id}/`)).length === 0) return id;
  }
  throw new ShipError('SHIP_ERR_INTERNAL', `Could not find a free backup id for ${idSafeName(databaseName)} at ${startedAt.toISOString()}.`);
}
