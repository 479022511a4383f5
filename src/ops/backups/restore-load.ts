/**
 * Loading a backup into the restore target, and putting the pre-restore state back.
 *
 * A load that fails part-way leaves a half-replaced database, which nothing must reopen to
 * clients. So a marker file sits in the run's work folder from just before the load starts
 * until the database is whole again — restored, or put back from the safety backup — and
 * the step that would reopen the database refuses while it is there (see db-restore.ts).
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ObjectStore } from '../../adapters/storage/index.ts';
import type { Config } from '../../config/index.ts';
import { ShipError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { readManifest } from './catalog.ts';
import { terminateOthers, withClient } from './connections.ts';
import { fetchDump, localDumpPath, restoreWorkDir } from './fetch-backup.ts';
import type { BackupManifest } from './manifest.ts';
import { replaceEmbedded } from './restore-embedded.ts';
import { loadIntoPostgres, type LoadResult } from './restore-postgres.ts';
import { locate, type RestoreTarget } from './restore-target.ts';

export interface LoadOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly target: RestoreTarget;
  readonly runId: string;
  readonly jobs: number;
  readonly signal?: AbortSignal | undefined;
}

/** The marker saying the target is half-replaced; it names the backup being loaded. */
function markerPath(stateDir: string, runId: string): string {
  return path.join(restoreWorkDir(stateDir, runId), 'load-in-progress.json');
}

/** What was being loaded when the target was left half-replaced, if it was. */
export async function halfReplaced(stateDir: string, runId: string): Promise<{ backupId: string; since: string } | undefined> {
  try {
    const value: unknown = JSON.parse(await readFile(markerPath(stateDir, runId), 'utf8'));
    if (typeof value === 'object' && value !== null && 'backupId' in value && 'since' in value) return { backupId: String(value.backupId), since: String(value.since) };
    return { backupId: 'unknown', since: 'unknown' };
  } catch {
    return undefined;
  }
}

/** Forgets the marker: for a target that is about to be dropped anyway. */
export async function clearHalfReplaced(stateDir: string, runId: string): Promise<void> {
  await rm(markerPath(stateDir, runId), { force: true });
}

/** Loads the dump in `file` into the target (parked, on PostgreSQL). */
export async function loadBackup(options: LoadOptions, manifest: Pick<BackupManifest, 'id' | 'dump'>, file: string): Promise<LoadResult> {
  const { config, target } = options;
  const marker = markerPath(config.stateDir, options.runId);
  await mkdir(path.dirname(marker), { recursive: true, mode: 0o700 });
  await writeFile(marker, JSON.stringify({ backupId: manifest.id, since: new Date().toISOString() }));
  let result: LoadResult;
  if (target.kind === 'embedded') {
    if (manifest.dump.format !== 'plain') throw notForEmbedded(manifest.id);
    const replaced = await replaceEmbedded({ stateDir: target.stateDir, file, tag: options.runId, logger: options.logger });
    result = { how: 'replayed into a new embedded database folder, then swapped in', leftOutSettings: replaced.leftOutSettings };
  } else {
    if ((await locate(target)) !== 'parked') {
      throw new ShipError('SHIP_ERR_STEP_FAILED', `Database ${target.name} is not parked as ${target.parked}, so clients could be connected; refusing to load into it. Continue with \`shipshape runs rollback ${options.runId}\`.`);
    }
    // A pg_restore left running by a process that was killed would race this one.
    await withClient(target.adminUrl, (client) => terminateOthers(client, target.parked));
    result = await loadIntoPostgres({ config, url: target.parkedUrl, manifest, file, jobs: options.jobs, signal: options.signal });
  }
  await rm(marker, { force: true });
  return result;
}

/**
 * Loads the safety backup back into the target (the runbook's rollback, "restore from
 * pre-restore backup"), fetching it again if its local copy is gone. Returns a sentence
 * for the journal.
 */
export async function putBackSafetyBackup(options: LoadOptions, store: ObjectStore, safetyBackupId: string): Promise<string> {
  const manifest = await readManifest(store, safetyBackupId);
  const file = localDumpPath(options.config.stateDir, options.runId, safetyBackupId);
  await fetchDump(store, manifest, file);
  const loaded = await loadBackup({ ...options, signal: undefined }, manifest, file);
  // It holds personal data and is fetched again should it be needed again.
  await rm(file, { force: true });
  return `the pre-restore state was put back from safety backup ${safetyBackupId} (${loaded.how})`;
}

export function notForEmbedded(backupId: string): ShipError {
  return new ShipError(
    'SHIP_ERR_NOT_SUPPORTED_EMBEDDED',
    `Backup ${backupId} is a pg_dump archive of a PostgreSQL server; the embedded database can only load plain SQL dumps (its own backups). Restore it into PostgreSQL: set DATABASE_URL.`,
  );
}
