/**
 * Taking a backup, in the runbook's order: dump into storage → verify the stored copy →
 * (optionally) prove it restores → write the manifest last. The backup procedure runs these
 * as separate journaled steps; a restore's safety backup runs them all at once through
 * `takeVerifiedBackup`, so both produce exactly the same kind of backup.
 *
 * A custom dump is checked as it streams into storage (size, SHA-256, `pg_restore --list` fed
 * from the same stream), so verifying the upload then only asks the store whether it holds an
 * object of that size; a plain SQL dump (the embedded database) is read back and checked.
 * `db verify` and a restore's prerequisite always read the stored copy back in full.
 */
import type { AppProfile } from '../../app-profile.ts';
import type { ObjectStore } from '../../adapters/storage/index.ts';
import type { Config } from '../../config/index.ts';
import type { Database } from '../../db/index.ts';
import type { EmbeddedDatabase } from '../../db/embedded.ts';
import type { Pool } from '../../db/pool.ts';
import { ShipError } from '../../errors.ts';
import { newBackupId, readManifest } from './catalog.ts';
import { applicationDatabaseName } from './database-target.ts';
import { dumpEmbedded } from './dump-embedded.ts';
import { dumpPostgres } from './dump-postgres.ts';
import { dumpKey, manifestKey, MANIFEST_FORMAT, type BackupManifest, type DumpFacts } from './manifest.ts';
import { dumpThroughOwner } from './owner-dump.ts';
import { verifyByScratchRestore } from './scratch-restore.ts';
import { verifyStoredDump } from './verify-stored.ts';

export type BackupSource =
  | { readonly kind: 'postgres'; readonly url: string; readonly databaseName: string }
  | { readonly kind: 'embedded'; readonly embedded: EmbeddedDatabase }
  /** The embedded database open in another process, which takes the dump (owner-dump.ts). */
  | { readonly kind: 'embedded-via-owner'; readonly pool: Pool; readonly ownerPid: number };

/**
 * What to dump, given the application database as `openDatabase` opened it. The embedded
 * database's pg_dump runs in the process that owns it: this one, or the one it is a guest of.
 */
export function backupSourceFor(config: Config, database: Database): BackupSource {
  if (database.kind === 'postgres' && config.databaseUrl !== undefined) {
    return { kind: 'postgres', url: config.databaseUrl, databaseName: applicationDatabaseName(config) };
  }
  if (database.embedded !== undefined) return { kind: 'embedded', embedded: database.embedded };
  if (database.embeddedOwnerPid !== undefined) return { kind: 'embedded-via-owner', pool: database.pool, ownerPid: database.embeddedOwnerPid };
  throw new ShipError('SHIP_ERR_INTERNAL', `Cannot tell how to dump ${database.description}; this is a Shipshape bug, please report it.`);
}

export interface DumpOptions {
  readonly config: Config;
  readonly profile: AppProfile;
  readonly store: ObjectStore;
  readonly source: BackupSource;
  /** pg_dump -Z level; default BACKUP_COMPRESSION_LEVEL. Ignored for the embedded database. */
  readonly compressionLevel?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((bytes: number) => void) | undefined;
}

/** A dump in storage, and what was checked of it as it streamed in. */
export interface TakenDump {
  readonly facts: DumpFacts;
  /** Checks made on the stream (custom dumps); undefined when the stored copy must be read back to check it. */
  readonly streamChecks?: readonly string[] | undefined;
}

/** Streams a dump into storage under a new backup id; nothing under the id looks valid yet. */
export async function dumpToStore(options: DumpOptions): Promise<TakenDump> {
  const { source, store } = options;
  const databaseName = source.kind === 'postgres' ? source.databaseName : 'embedded';
  const id = await newBackupId(store, new Date(), databaseName);
  const common = { profile: options.profile, store, backupId: id, objectKey: dumpKey(id), signal: options.signal, onProgress: options.onProgress };
  if (source.kind === 'embedded') return { facts: await dumpEmbedded({ ...common, embedded: source.embedded }) };
  if (source.kind === 'embedded-via-owner') {
    const facts = await dumpThroughOwner({
      pool: source.pool,
      ownerPid: source.ownerPid,
      request: { backupId: id, storageUrl: options.config.backupStorageUrl },
      signal: options.signal,
    });
    return { facts };
  }
  return dumpPostgres({
    ...common,
    config: options.config,
    url: source.url,
    databaseName,
    compressionLevel: options.compressionLevel ?? options.config.backups.compressionLevel,
  });
}

export interface VerifyOptions {
  readonly config: Config;
  readonly store: ObjectStore;
  readonly facts: Pick<DumpFacts, 'id' | 'dump' | 'tables'>;
  /** Also restore into a scratch database and compare every table's row count. */
  readonly restoreTest: boolean;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((bytes: number) => void) | undefined;
}

/**
 * The checks of a freshly stored dump, in words: those made on its stream, then the stored
 * copy read back, whose size and SHA-256 must be those measured on that stream (a dump not
 * checked as it streamed gets every check on the re-read). Throws SHIP_ERR_BACKUP_NOT_VERIFIED
 * on the first that fails.
 */
export async function verifyFreshDump(
  options: Omit<VerifyOptions, 'restoreTest'> & { readonly streamChecks?: readonly string[] | undefined },
): Promise<string[]> {
  if (options.streamChecks === undefined) return verifyStoredDump(options);
  return [...options.streamChecks, ...(await verifyStoredDump({ ...options, listedOnTheWayIn: true }))];
}

/** Every check of a stored dump, reading it back, in words; throws SHIP_ERR_BACKUP_NOT_VERIFIED on the first that fails. */
export async function verifyBackup(options: VerifyOptions): Promise<string[]> {
  const checks = await verifyStoredDump(options);
  if (options.restoreTest) checks.push(await verifyByScratchRestore(options));
  return checks;
}

export interface ManifestContext {
  readonly purpose: string;
  readonly runId: string | null;
  readonly operator: string;
}

/** Writes the manifest — the backup's seal — and reads it back. */
export async function writeManifest(
  store: ObjectStore,
  facts: DumpFacts,
  context: ManifestContext,
  checks: readonly string[],
  restoreTested: boolean,
): Promise<BackupManifest> {
  const now = new Date().toISOString();
  const manifest: BackupManifest = {
    format: MANIFEST_FORMAT,
    ...facts,
    completedAt: now,
    purpose: context.purpose,
    runId: context.runId,
    operator: context.operator,
    verification: { verifiedAt: now, checks: [...checks], restoreTested },
  };
  await store.putJson(manifestKey(facts.id), manifest);
  return readManifest(store, facts.id);
}

/** Dump, verify, seal. On any failure the dump is removed again and the error rethrown. */
export async function takeVerifiedBackup(options: DumpOptions & { readonly restoreTest: boolean; readonly context: ManifestContext }): Promise<BackupManifest> {
  const { facts, streamChecks } = await dumpToStore(options);
  try {
    const checks = await verifyFreshDump({ ...options, facts, streamChecks });
    if (options.restoreTest) checks.push(await verifyByScratchRestore({ ...options, facts }));
    return await writeManifest(options.store, facts, options.context, checks, options.restoreTest);
  } catch (error) {
    await options.store.delete(manifestKey(facts.id)).catch(() => undefined);
    await options.store.delete(facts.dump.objectKey).catch(() => undefined);
    throw error;
  }
}
