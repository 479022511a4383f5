/**
 * The recovery test behind `--verify-restore` and `db verify --restore`: load the stored
 * backup into a throwaway database and compare every table's row count with the manifest.
 * A hash proves the bytes did not change; only a restore proves they can become a database.
 *
 * Custom archives are restored into a scratch database on BACKUP_SCRATCH_DATABASE_URL's
 * server (default: DATABASE_URL's), streamed from storage into pg_restore (no temp file).
 * Plain SQL dumps go there too when a server is configured, else into an in-memory PGlite.
 * The scratch database is always dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import type { ObjectStore } from '../../adapters/storage/index.ts';
import type { Config } from '../../config/index.ts';
import { quoteIdent } from '../../db/pool.ts';
import { ShipError, describeError } from '../../errors.ts';
import { withClient } from './connections.ts';
import { countTables, rowReader } from './database-facts.ts';
import { withDatabaseName } from './database-target.ts';
import { libpqEnvironment } from './libpq-env.ts';
import type { DumpFacts, TableCount } from './manifest.ts';
import { replayPlainSql, unknownSettings, withoutSettings } from './plain-sql.ts';
import { requirePgRestoreFor } from './restore-postgres.ts';
import { spawnTool, toolFailure, ToolFeed } from './tool-process.ts';

export interface ScratchRestoreOptions {
  readonly config: Config;
  readonly store: ObjectStore;
  readonly facts: Pick<DumpFacts, 'id' | 'dump' | 'tables'>;
  readonly signal?: AbortSignal | undefined;
}

/** Returns what was checked, in words; throws SHIP_ERR_BACKUP_NOT_VERIFIED when counts differ or the restore fails. */
export async function verifyByScratchRestore(options: ScratchRestoreOptions): Promise<string> {
  const { config, facts } = options;
  const server = config.backups.scratchDatabaseUrl ?? config.databaseUrl;
  let restored: { counts: TableCount[]; where: string };
  try {
    if (server !== undefined) restored = await restoreOnServer(options, server);
    else if (facts.dump.format === 'plain') restored = await restoreInPglite(options);
    else {
      throw new ShipError(
        'SHIP_ERR_CONFIG',
        `Backup ${facts.id} is a pg_dump archive, and there is no PostgreSQL server to test-restore it on. Set BACKUP_SCRATCH_DATABASE_URL (or DATABASE_URL).`,
      );
    }
  } catch (error) {
    if (error instanceof ShipError && (error.code === 'SHIP_ERR_CONFIG' || error.code === 'SHIP_ERR_TOOL_MISSING')) throw error;
    throw new ShipError('SHIP_ERR_BACKUP_NOT_VERIFIED', `Backup ${facts.id} does not restore: ${describeError(error)}. Do not rely on it; take a new backup.`, {
      cause: error,
    });
  }
  const found = new Map(restored.counts.map((table) => [table.name, table.rows]));
  const differences = facts.tables
    .filter((table) => found.get(table.name) !== table.rows)
    .map((table) => `${table.name}: ${found.get(table.name) ?? 'missing'} restored, ${table.rows} in the manifest`);
  if (differences.length > 0) {
    throw new ShipError(
      'SHIP_ERR_BACKUP_NOT_VERIFIED',
      `Backup ${facts.id} restores with different row counts (${differences.join('; ')}). Do not rely on it; take a new backup.`,
    );
  }
  return `restored into ${restored.where}: all ${facts.tables.length} tables' row counts match the manifest`;
}

async function restoreOnServer(options: ScratchRestoreOptions, server: string): Promise<{ counts: TableCount[]; where: string }> {
  const name = `shipshape_verify_${randomBytes(5).toString('hex')}`;
  const scratchUrl = withDatabaseName(server, name);
  await withClient(server, (client) => client.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0`), 'shipshape-verify');
  try {
    if (options.facts.dump.format === 'plain') {
      const sql = (await readWhole(options.store, options.facts.dump.objectKey)).toString('utf8');
      await withClient(scratchUrl, (client) => replayPlainSql(client, rowReader(client), sql), 'shipshape-verify');
    } else {
      await pgRestoreFromStorage(options, scratchUrl, name);
    }
    const counts = await withClient(scratchUrl, (client) => countTables(rowReader(client)), 'shipshape-verify');
    return { counts, where: `scratch database ${name} on ${new URL(server).host || 'the local server'}` };
  } finally {
    await withClient(server, (client) => client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`), 'shipshape-verify').catch(() => undefined);
  }
}

async function pgRestoreFromStorage(options: ScratchRestoreOptions, scratchUrl: string, name: string): Promise<void> {
  const tool = await requirePgRestoreFor(options.config, options.facts);
  // From a pipe pg_restore reads the archive in order, so no --jobs; --single-transaction keeps a failure tidy.
  const restore = spawnTool(tool.command, ['--no-owner', '--no-privileges', '--exit-on-error', '--single-transaction', '--no-password', `--dbname=${name}`], {
    env: libpqEnvironment(scratchUrl),
    stdin: 'pipe',
    stdout: 'ignore',
    signal: options.signal,
  });
  const feed = new ToolFeed(restore);
  try {
    const body = await options.store.get(options.facts.dump.objectKey);
    for await (const chunk of body as AsyncIterable<Buffer>) await feed.write(chunk);
  } finally {
    feed.end();
  }
  const exit = await restore.exited;
  if (exit.code !== 0) throw toolFailure(restore, exit);
}

async function restoreInPglite(options: ScratchRestoreOptions): Promise<{ counts: TableCount[]; where: string }> {
  const sql = (await readWhole(options.store, options.facts.dump.objectKey)).toString('utf8');
  const { PGlite } = await import('@electric-sql/pglite');
  const pglite = await PGlite.create();
  try {
    const read = rowReader(pglite);
    await pglite.exec(withoutSettings(sql, new Set(await unknownSettings(read, sql))));
    return { counts: await countTables(read), where: 'a scratch in-memory PGlite' };
  } finally {
    await pglite.close();
  }
}

async function readWhole(store: ObjectStore, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of (await store.get(key)) as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}
