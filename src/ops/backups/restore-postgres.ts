/**
 * Loading a dump into a PostgreSQL database.
 *
 * Custom archives go through `pg_restore --no-owner --no-privileges --jobs N --exit-on-error`
 * from a local file, into a new, empty database (the restore builds it beside the live one):
 * nothing needs dropping, so there is no `--clean` — which cannot drop pg-boss's partitioned
 * queue tables in a database that ran the workers. `--no-owner --no-privileges` because the
 * roles of the server the backup came from need not exist here; `--exit-on-error` because
 * pg_restore otherwise carries on past errors and leaves a half-restored database that
 * looks finished. Plain SQL dumps (from the embedded database) are replayed in one
 * transaction through the driver, with settings the server does not know left out.
 */
import { readFile } from 'node:fs/promises';
import type { Config } from '../../config/index.ts';
import { ShipError } from '../../errors.ts';
import { withClient } from './connections.ts';
import { rowReader } from './database-facts.ts';
import { databaseNameOf } from './database-target.ts';
import { libpqEnvironment } from './libpq-env.ts';
import type { BackupManifest } from './manifest.ts';
import { toolVersion } from './pg-tools.ts';
import { replayPlainSql } from './plain-sql.ts';
import { expectSuccess, spawnTool } from './tool-process.ts';

export interface LoadResult {
  /** How it was loaded, for the journal. */
  readonly how: string;
  /** Header settings of a plain dump that the server did not know and that were left out. */
  readonly leftOutSettings: string[];
}

export function pgRestoreArguments(databaseName: string, jobs: number, file: string): string[] {
  return ['--no-owner', '--no-privileges', `--jobs=${jobs}`, '--exit-on-error', '--no-password', `--dbname=${databaseName}`, file];
}

/** Loads the dump in `file` into the database at `url`. */
export async function loadIntoPostgres(options: {
  readonly config: Config;
  readonly url: string;
  readonly manifest: Pick<BackupManifest, 'id' | 'dump'>;
  readonly file: string;
  readonly jobs: number;
  readonly signal?: AbortSignal | undefined;
}): Promise<LoadResult> {
  const { manifest } = options;
  if (manifest.dump.format === 'plain') {
    const sql = await readFile(options.file, 'utf8');
    const result = await withClient(options.url, (client) => replayPlainSql(client, rowReader(client), sql));
    return { how: 'plain SQL replayed in one transaction', leftOutSettings: result.leftOutSettings };
  }
  const tool = await requirePgRestoreFor(options.config, manifest);
  const restore = spawnTool(tool.command, pgRestoreArguments(databaseNameOf(options.url), options.jobs, options.file), {
    env: libpqEnvironment(options.url),
    stdout: 'ignore',
    signal: options.signal,
  });
  await expectSuccess(restore);
  return { how: `pg_restore ${tool.version} with ${options.jobs} job(s)`, leftOutSettings: [] };
}

/** pg_restore, checked to be new enough to read the archive. */
export async function requirePgRestoreFor(config: Config, manifest: Pick<BackupManifest, 'id' | 'dump'>): Promise<{ command: string; version: string }> {
  const tool = await toolVersion(config, 'pg_restore');
  if (tool.major < manifest.dump.toolMajor) {
    throw new ShipError(
      'SHIP_ERR_TOOL_MISSING',
      `pg_restore ${tool.version} cannot read backup ${manifest.id}, which was written by ${manifest.dump.tool}; pg_restore must be version ${manifest.dump.toolMajor} or newer. ` +
        `Install the PostgreSQL ${manifest.dump.toolMajor} client tools or set PG_BIN_DIR to them.`,
    );
  }
  return tool;
}
