/**
 * The copies a restore keeps of what it replaced: `<db>__pre_restore_<run>` databases on the
 * PostgreSQL server, `db/data.pre-restore-<run>` folders beside the embedded database. Each is
 * the way back for its run (`shipshape runs rollback`) and holds a full copy of the data, so
 * `shipshape db prune` drops the old ones and says how much disk they held.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../../config/index.ts';
import { quoteIdent } from '../../db/pool.ts';
import { withClient } from './connections.ts';
import { adminUrlFor, applicationDatabaseName } from './database-target.ts';
import { embeddedDataDir } from './restore-embedded.ts';
import { preRestorePrefix } from './restore-target.ts';

export interface KeptCopy {
  /** The database's name, or the folder's path. */
  readonly name: string;
  /** The run that kept it, as r-YYYYMMDD-HHMMSS-xxxx. */
  readonly runId: string;
  readonly bytes: number;
}

/** This application's kept copies, newest run first. */
export async function listKeptCopies(config: Config): Promise<KeptCopy[]> {
  const copies: KeptCopy[] = [];
  if (config.databaseUrl === undefined) {
    const live = embeddedDataDir(config.stateDir);
    const prefix = `${path.basename(live)}.pre-restore-`;
    for (const entry of await readdir(path.dirname(live), { withFileTypes: true }).catch(() => [])) {
      if (!entry.isDirectory() || !entry.name.startsWith(prefix)) continue;
      const folder = path.join(path.dirname(live), entry.name);
      copies.push({ name: folder, runId: entry.name.slice(prefix.length), bytes: await folderBytes(folder) });
    }
  } else {
    const name = applicationDatabaseName(config);
    const prefix = preRestorePrefix(name);
    await withClient(adminUrlFor(config.databaseUrl, name), async (client) => {
      const { rows } = await client.query<{ datname: string; bytes: string }>(
        'SELECT datname, pg_database_size(oid)::text AS bytes FROM pg_database WHERE starts_with(datname, $1::text)',
        [prefix],
      );
      for (const row of rows) {
        const suffix = row.datname.slice(prefix.length);
        const match = /^(\d{8})_(\d{6})_([0-9a-f]{4})$/.exec(suffix);
        if (match) copies.push({ name: row.datname, runId: `r-${match[1]}-${match[2]}-${match[3]}`, bytes: Number(row.bytes) });
      }
    });
  }
  return copies.sort((a, b) => b.runId.localeCompare(a.runId));
}

/** Drops one kept copy (sessions on it are terminated). */
export async function dropKeptCopy(config: Config, copy: KeptCopy): Promise<void> {
  if (config.databaseUrl === undefined) {
    await rm(copy.name, { recursive: true, force: true });
    return;
  }
  await withClient(adminUrlFor(config.databaseUrl, applicationDatabaseName(config)), (client) =>
    client.query(`DROP DATABASE IF EXISTS ${quoteIdent(copy.name)} WITH (FORCE)`),
  );
}

async function folderBytes(folder: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name)).catch(() => undefined))?.size ?? 0;
  }
  return total;
}
