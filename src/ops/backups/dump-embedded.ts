/**
 * A plain-SQL dump of the embedded database, made by PGlite's own pg_dump (compiled to WASM,
 * from `@electric-sql/pglite-tools`) inside the process that owns the database.
 *
 * Consistency comes from the single backend: the dump and the row counts run while this
 * process holds the backend lease, so no other connection's statement runs in between.
 * The dump is built in memory by the WASM tool (it cannot stream), which is fine at the
 * sizes an embedded database has; production databases use pg_dump (dump-postgres.ts).
 *
 * Options chosen for restoring anywhere, including a real PostgreSQL of an older version:
 * `--no-owner --no-privileges` (PGlite has one role; the target has its own), and
 * `--clean --if-exists` so the script replaces what a non-empty target already has.
 */
import { Readable } from 'node:stream';
import type { PGlite } from '@electric-sql/pglite';
import type { AppProfile } from '../../app-profile.ts';
import type { ObjectStore } from '../../adapters/storage/index.ts';
import { quoteIdent } from '../../db/pool.ts';
import type { EmbeddedDatabase } from '../../db/embedded.ts';
import { countTables, readRecentData, readSchemaVersion, rowReader } from './database-facts.ts';
import type { DumpFacts } from './manifest.ts';

export const PGLITE_DUMP_ARGUMENTS = ['--no-owner', '--no-privileges', '--clean', '--if-exists'] as const;

export interface EmbeddedDumpOptions {
  readonly embedded: EmbeddedDatabase;
  readonly profile: AppProfile;
  readonly store: ObjectStore;
  readonly backupId: string;
  readonly objectKey: string;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((bytes: number) => void) | undefined;
}

export async function dumpEmbedded(options: EmbeddedDumpOptions): Promise<DumpFacts> {
  const { embedded, profile } = options;
  const pglite = embedded.pglite;
  const createdAt = new Date().toISOString();
  const taken = await embedded.lease.run(async () => {
    const read = rowReader(pglite);
    const [server] = await read<{ version: string }>("SELECT current_setting('server_version') AS version");
    const facts = {
      tables: await countTables(read),
      schemaVersion: await readSchemaVersion(read, profile),
      recentData: await readRecentData(read, profile),
    };
    const file = await dumpLeavingSessionAsFound(pglite);
    return { serverVersion: (server?.version ?? '?').split(' ')[0] ?? '?', facts, file };
  });
  options.signal?.throwIfAborted();
  const body = Readable.from(Buffer.from(await taken.file.arrayBuffer()));
  const stored = await options.store.put(options.objectKey, body, {
    contentType: 'application/sql',
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  });
  const major = Number(taken.serverVersion.split('.')[0]);
  return {
    id: options.backupId,
    createdAt,
    database: { name: 'embedded', kind: 'embedded', serverVersion: taken.serverVersion },
    dump: {
      objectKey: options.objectKey,
      format: 'plain',
      tool: `pglite-tools pg_dump ${taken.serverVersion}`,
      toolMajor: Number.isInteger(major) ? major : 0,
      compressionLevel: null,
      bytes: stored.bytes,
      sha256: stored.sha256,
    },
    consistency: 'row counts read while holding the single embedded backend, as the dump was taken',
    ...taken.facts,
  };
}

/**
 * Runs PGlite's pg_dump and puts the shared backend back as it found it. The WASM pg_dump
 * talks to the same single backend every connection shares, and (pglite-tools 0.4.8) returns
 * with its REPEATABLE READ transaction still open and its session settings (DateStyle,
 * extra_float_digits, statement_timeout, …) still set — every later query of every client
 * would run inside that transaction. So: roll it back, then restore each changed setting.
 */
async function dumpLeavingSessionAsFound(pglite: PGlite): Promise<File> {
  const sessionSettings = async () =>
    new Map(
      (await pglite.query<{ name: string; setting: string; source: string }>('SELECT name, setting, source FROM pg_catalog.pg_settings')).rows.map((row) => [
        row.name,
        row,
      ]),
    );
  const before = await sessionSettings();
  try {
    const { pgDump } = await import('@electric-sql/pglite-tools/pg_dump');
    return await pgDump({ pg: pglite, args: [...PGLITE_DUMP_ARGUMENTS] });
  } finally {
    if (pglite.isInTransaction()) await pglite.exec('ROLLBACK');
    const after = await sessionSettings();
    for (const [name, now] of after) {
      const was = before.get(name);
      if (was === undefined || (was.setting === now.setting && was.source === now.source)) continue;
      if (was.source === 'session') await pglite.query('SELECT pg_catalog.set_config($1::text, $2::text, false)', [name, was.setting]);
      else if (now.source === 'session') await pglite.exec(`RESET ${quoteIdent(name)}`);
    }
  }
}
