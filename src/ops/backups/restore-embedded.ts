/**
 * Replacing the embedded database with a backup.
 *
 * PGlite keeps its database in a folder that exactly one process may open, so the restore
 * builds a complete new folder beside the live one (`db/data.restoring-<tag>`), replays the
 * plain SQL dump into it, and only then swaps the folders with two renames. A failure before
 * the swap leaves the live database untouched. The replaced folder is kept as
 * `db/data.pre-restore-<tag>`: rolling back is swapping it back (`swapEmbeddedBack`). The swap happens only while this process
 * could become the database's owner — if `shipshape serve` (or any other process) has it
 * open, the restore refuses and says so, because replacing files under a running PGlite
 * would corrupt both.
 */
import { readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { connectEmbedded } from '../../db/embedded.ts';
import { ShipError, describeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { rowReader } from './database-facts.ts';
import { unknownSettings, withoutSettings } from './plain-sql.ts';

export function embeddedDataDir(stateDir: string): string {
  return path.join(stateDir, 'db', 'data');
}

/**
 * Throws SHIP_ERR_EMBEDDED_DB_LOCKED when another process serves the embedded database.
 * Briefly opens it as owner to be sure, then closes it again.
 */
export async function ensureEmbeddedIdle(stateDir: string, logger: Logger): Promise<void> {
  const connection = await connectEmbedded(stateDir, logger);
  if (connection.role === 'guest') {
    throw new ShipError(
      'SHIP_ERR_EMBEDDED_DB_LOCKED',
      `The embedded database is open in process ${connection.ownerPid} (probably \`shipshape serve\`). A restore replaces its files, which must not happen under a running process: stop it, then run the restore again.`,
      { details: { pid: connection.ownerPid } },
    );
  }
  await connection.database.close();
}

/** Replaces the embedded database under `stateDir` with the plain SQL dump in `file`. */
export async function replaceEmbedded(options: { stateDir: string; file: string; tag: string; logger: Logger }): Promise<{ leftOutSettings: string[] }> {
  const live = embeddedDataDir(options.stateDir);
  const fresh = `${live}.restoring-${options.tag}`;
  const replaced = preRestoreDir(options.stateDir, options.tag);
  await rm(fresh, { recursive: true, force: true });
  const sql = await readFile(options.file, 'utf8');
  let leftOutSettings: string[];
  const { PGlite } = await import('@electric-sql/pglite');
  const pglite = await PGlite.create(fresh);
  try {
    leftOutSettings = await unknownSettings(rowReader(pglite), sql);
    await pglite.exec(withoutSettings(sql, new Set(leftOutSettings)));
  } catch (error) {
    await pglite.close().catch(() => undefined);
    await rm(fresh, { recursive: true, force: true });
    throw new ShipError(
      'SHIP_ERR_STEP_FAILED',
      `Loading the SQL dump into a new embedded database failed: ${describeError(error)}. The live database was not touched.`,
      { cause: error },
    );
  }
  await pglite.close();

  await ensureEmbeddedIdle(options.stateDir, options.logger);
  await rm(replaced, { recursive: true, force: true });
  const hadLive = (await stat(live).catch(() => undefined)) !== undefined;
  if (hadLive) await rename(live, replaced);
  try {
    await rename(fresh, live);
  } catch (error) {
    if (hadLive) await rename(replaced, live);
    throw error;
  }
  return { leftOutSettings };
}

/** Where a restore keeps the embedded folder it replaced. */
export function preRestoreDir(stateDir: string, tag: string): string {
  return `${embeddedDataDir(stateDir)}.pre-restore-${tag}`;
}

/**
 * Undoes `replaceEmbedded` (or whatever part of it happened): the kept pre-restore folder goes
 * back in place and the restored one is removed. Safe to repeat. Returns a sentence for the journal.
 */
export async function swapEmbeddedBack(options: { stateDir: string; tag: string; logger: Logger }): Promise<string> {
  const live = embeddedDataDir(options.stateDir);
  const fresh = `${live}.restoring-${options.tag}`;
  const kept = preRestoreDir(options.stateDir, options.tag);
  await rm(fresh, { recursive: true, force: true });
  if ((await stat(kept).catch(() => undefined)) === undefined) return 'the live embedded database was not replaced by this run: nothing to swap back';
  if ((await stat(live).catch(() => undefined)) !== undefined) {
    await ensureEmbeddedIdle(options.stateDir, options.logger);
    await rename(live, `${live}.restored-${options.tag}`);
  }
  await rename(kept, live);
  await rm(`${live}.restored-${options.tag}`, { recursive: true, force: true });
  return `the pre-restore embedded database (${kept}) is back in place`;
}
