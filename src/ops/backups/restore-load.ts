/**
 * Loading a backup beside the live database, and taking it away again.
 *
 * PostgreSQL: a new database `<name>__incoming_<run>` is created (dropped first if an earlier
 * attempt of the same run left one half-loaded) and the dump is loaded into it; the live
 * database is not touched. The embedded database: a new folder is built beside the live one
 * and swapped in (restore-embedded.ts), the replaced folder kept for the way back.
 */
import type { Config } from '../../config/index.ts';
import { quoteIdent } from '../../db/pool.ts';
import type { Logger } from '../../log.ts';
import { databaseExists, withClient } from './connections.ts';
import type { BackupManifest } from './manifest.ts';
import { replaceEmbedded, swapEmbeddedBack } from './restore-embedded.ts';
import { loadIntoPostgres, type LoadResult } from './restore-postgres.ts';
import type { PostgresTarget, RestoreTarget } from './restore-target.ts';
import { ShipError } from '../../errors.ts';

export interface LoadOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly target: RestoreTarget;
  readonly runId: string;
  readonly jobs: number;
  readonly signal?: AbortSignal | undefined;
}

/** Loads the dump in `file` beside the live database (PostgreSQL) or into a new folder swapped in (embedded). */
export async function loadBeside(options: LoadOptions, manifest: Pick<BackupManifest, 'id' | 'dump'>, file: string): Promise<LoadResult> {
  const { config, target } = options;
  if (target.kind === 'embedded') {
    if (manifest.dump.format !== 'plain') throw notForEmbedded(manifest.id);
    const replaced = await replaceEmbedded({ stateDir: target.stateDir, file, tag: options.runId, logger: options.logger });
    return { how: 'replayed into a new embedded database folder, then swapped in (the replaced folder is kept)', leftOutSettings: replaced.leftOutSettings };
  }
  await dropIncoming(target);
  await withClient(target.adminUrl, (client) => client.query(`CREATE DATABASE ${quoteIdent(target.incoming)} TEMPLATE template0`));
  return loadIntoPostgres({ config, url: target.incomingUrl, manifest, file, jobs: options.jobs, signal: options.signal });
}

/** Drops this run's incoming database, if there is one (sessions on it are terminated). */
export async function dropIncoming(target: PostgresTarget): Promise<boolean> {
  return withClient(target.adminUrl, async (client) => {
    if (!(await databaseExists(client, target.incoming))) return false;
    await client.query(`DROP DATABASE ${quoteIdent(target.incoming)} WITH (FORCE)`);
    return true;
  });
}

/** Takes the loaded backup away again: drops the incoming database, or swaps the embedded folder back. */
export async function unloadBeside(options: Pick<LoadOptions, 'target' | 'runId' | 'logger'>): Promise<string> {
  const { target } = options;
  if (target.kind === 'embedded') return swapEmbeddedBack({ stateDir: target.stateDir, tag: options.runId, logger: options.logger });
  return (await dropIncoming(target)) ? `dropped ${target.incoming}` : `${target.incoming} did not exist: nothing to drop`;
}

export function notForEmbedded(backupId: string): ShipError {
  return new ShipError(
    'SHIP_ERR_NOT_SUPPORTED_EMBEDDED',
    `Backup ${backupId} is a pg_dump archive of a PostgreSQL server; the embedded database can only load plain SQL dumps (its own backups). Restore it into PostgreSQL: set DATABASE_URL.`,
  );
}
