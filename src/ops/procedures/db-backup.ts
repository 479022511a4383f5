/**
 * Runbook: "Database Backup" — `shipshape db backup [--verify-restore] [--compression N]`.
 *
 * When: daily (automated) or before major changes. Low risk: it only reads the database.
 *
 * Prerequisites: the database answers; pg_dump is installed and at least the server's major
 * version; backup storage accepts writes.
 *
 *   1-3. Set variables, create a directory, perform the backup: `pg_dump --format=custom`
 *        streamed straight into storage — no local file, so no disk space needed and
 *        nothing to clean up (the runbook's step 7) — with its size and SHA-256 measured
 *        on the way and `pg_restore --list` (the runbook's integrity test) fed from the same
 *        stream: it must accept the archive and list data for every table, whose exact row
 *        counts are read in one statement in the dump's own snapshot.
 *   4.   Compress: not a separate pass. The custom format is compressed already; gzip over
 *        it bought 2 % for 40 % more time (PRODUCT.md), so pg_dump's own level is used.
 *   5-6. Upload and verify the upload — the runbook downloads the copy and runs
 *        `pg_restore --list` on it: the stored copy is read back from storage, and its size
 *        and SHA-256 must be those of the stream `pg_restore --list` accepted (an embedded
 *        database's plain SQL dump gets its SQL checks on this read). With --verify-restore
 *        it is then restored into a scratch database, and every table's row count compared
 *        with the counts taken at dump time. `shipshape db verify` re-reads a stored backup
 *        in full at any time.
 *   Then the manifest is written, last: a dump without one is never offered for restore.
 *
 * On the embedded database the dump is PGlite's own pg_dump (plain SQL) with the same
 * manifest and verification. It runs in the process that owns the database: while
 * `shipshape serve` runs, that process's workers take the dump into this run's storage and
 * this run goes on from there (src/ops/backups/owner-dump.ts). Alerts: #ops-backups.
 */
import { z } from 'zod';
import { withBackupStore } from '../backups/backup-store.ts';
import { readManifest } from '../backups/catalog.ts';
import { applicationDatabaseName, databaseLockResource } from '../backups/database-target.ts';
import { PGLITE_DUMP_ARGUMENTS } from '../backups/dump-embedded.ts';
import { pgDumpArguments } from '../backups/dump-postgres.ts';
import { dumpFactsSchema, dumpKey, manifestKey, type BackupManifest, type DumpFacts } from '../backups/manifest.ts';
import { ownerTakesDumps } from '../backups/owner-dump.ts';
import { pgDumpCheck, serverVersionAt } from '../backups/pg-tools.ts';
import { verifyByScratchRestore } from '../backups/scratch-restore.ts';
import { backupSourceFor, dumpToStore, takeVerifiedBackup, verifyFreshDump, writeManifest, type BackupSource } from '../backups/take-backup.ts';
import { procedureEntry } from '../engine/registry.ts';
import { defineProcedure, outputOf, requireOutput, type RunContext, stepFor } from '../engine/types.ts';

const params = z.object({
  /** Also restore into a scratch database and compare every table's row count. */
  verifyRestore: z.boolean().default(false),
  /** pg_dump -Z level; default BACKUP_COMPRESSION_LEVEL. */
  compression: z.coerce.number().int().min(0).max(9).optional(),
});
type Params = z.output<typeof params>;
type Context = RunContext<Params>;

// The steps, in order (listed in `steps` below); each declares what it returns, for the steps after it.
const step = stepFor<Params>();

const dump = step({
  id: 'dump',
  title: 'Perform backup (pg_dump streamed straight into storage)',
  output: z.object({
    backupId: z.string(),
    facts: dumpFactsSchema,
    /** What was checked as the dump streamed into storage; absent when the stored copy must be read back (plain SQL). */
    streamChecks: z.array(z.string()).optional(),
  }),
  describe: ({ config, params: p }) =>
    config.databaseUrl === undefined
      ? [
          `PGlite pg_dump ${PGLITE_DUMP_ARGUMENTS.join(' ')} --inserts (plain SQL, holding the embedded backend, in the process that owns it: this one, or \`shipshape serve\`'s workers through the job queue)`,
          `→ ${config.backupStorageUrl}/<backup-id>/dump, size and SHA-256 measured as it streams`,
          'row counts: SELECT ARRAY[(SELECT count(*) FROM <each table>), …], under the same hold',
        ]
      : [
          'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot();',
          `pg_dump ${pgDumpArguments(p.compression ?? config.backups.compressionLevel, '<exported snapshot>').join(' ')}   (connection from DATABASE_URL via PG* environment; password in PGPASSWORD, never on the command line)`,
          `→ streamed to ${config.backupStorageUrl}/<backup-id>/dump (no local file, no second gzip), size and SHA-256 measured as it streams`,
          '  and the same stream fed to `pg_restore --list`: it must accept the archive and list data for every counted table',
          'row counts: SELECT ARRAY[(SELECT count(*) FROM <each table>), …], one statement, in the same snapshot, as the dump starts',
        ],
  async run(context) {
    const source = await sourceOf(context);
    const { facts, streamChecks } = await withBackupStore(context.config, (store) =>
      dumpToStore({
        config: context.config,
        profile: context.profile,
        store,
        source,
        compressionLevel: context.params.compression,
        signal: context.signal,
        onProgress: (bytes) => context.progress({ bytes, label: 'dump → storage' }),
      }),
    );
    const where = source.kind === 'embedded-via-owner' ? ` (dumped by process ${source.ownerPid}, which owns the embedded database)` : '';
    context.note(`backup ${facts.id}: ${facts.dump.bytes} bytes stored, ${facts.tables.length} tables counted${where}`, { backupId: facts.id });
    return { backupId: facts.id, facts, ...(streamChecks === undefined ? {} : { streamChecks: [...streamChecks] }) };
  },
  async undo(context, { facts }) {
    await withBackupStore(context.config, (store) => store.delete(facts.dump.objectKey));
  },
  // An interrupted upload leaves nothing visible (storage publishes whole objects only), or
  // at worst a dump without a manifest, which is never offered for restore and which
  // `shipshape db prune` removes after a day.
  async undoInterrupted() {},
});

const verifyUpload = step({
  id: 'verify-upload',
  title: 'Verify upload (read the stored copy back: size and SHA-256 as measured on the stream)',
  output: z.object({ checks: z.array(z.string()) }),
  describe: ({ config }) =>
    config.databaseUrl === undefined
      ? [
          `read ${config.backupStorageUrl}/<backup-id>/dump back: size and SHA-256 must match what was written`,
          'SQL dump checks: pg_dump header and closing line present, a CREATE TABLE for every counted table',
        ]
      : [
          `read ${config.backupStorageUrl}/<backup-id>/dump back: size and SHA-256 must match those measured on the stream`,
          '(`pg_restore --list` accepted those same bytes as they streamed in the dump step)',
        ],
  async run(context) {
    const { facts, streamChecks } = requireOutput(context, dump);
    const checks = await withBackupStore(context.config, (store) =>
      verifyFreshDump({
        config: context.config,
        store,
        facts,
        streamChecks,
        signal: context.signal,
        onProgress: (bytes) => context.progress({ bytes, totalBytes: facts.dump.bytes, label: 're-read' }),
      }),
    );
    for (const check of checks) context.note(check);
    return { checks };
  },
});

const verifyRestore = step({
  id: 'verify-restore',
  title: 'Test backup integrity (restore into a scratch database, compare row counts)',
  output: z.object({ restoreTested: z.boolean(), check: z.string().optional() }),
  describe: ({ params: p, config }) =>
    p.verifyRestore
      ? [
          `CREATE DATABASE shipshape_verify_<random> TEMPLATE template0 on ${config.backups.scratchDatabaseUrl === undefined ? (config.databaseUrl === undefined ? 'an in-memory PGlite' : 'the DATABASE_URL server') : 'the BACKUP_SCRATCH_DATABASE_URL server'}`,
          'restore the stored dump into it; SELECT count(*) FROM every table; compare with the manifest',
          'DROP DATABASE shipshape_verify_<random> WITH (FORCE)',
        ]
      : ['not requested (pass --verify-restore to restore into a scratch database and compare every row count)'],
  // Not asked for: shown as "– verify-restore: not asked (--verify-restore)", never as a ✓ that took 0 ms.
  notAsked: (context) => (context.params.verifyRestore ? undefined : '--verify-restore'),
  async run(context) {
    if (!context.params.verifyRestore) return { restoreTested: false };
    const facts = factsOf(context);
    const restored = await withBackupStore(context.config, (store) => verifyByScratchRestore({ config: context.config, store, facts, signal: context.signal }));
    context.note(restored);
    return { restoreTested: true, check: restored };
  },
});

const manifest = step({
  id: 'manifest',
  title: 'Write the manifest (last: it marks the backup complete and verified)',
  output: z.object({ backupId: z.string(), manifest: z.string() }),
  describe: ({ config }) => [`PUT ${config.backupStorageUrl}/<backup-id>/manifest.json (row counts, schema version, size, SHA-256, checks passed)`],
  async run(context) {
    const facts = factsOf(context);
    const verified = requireOutput(context, verifyUpload);
    // Not asked for (--verify-restore): skipped, so it has no output.
    const restore = outputOf(context, verifyRestore) ?? { restoreTested: false };
    const checks = restore.check === undefined ? verified.checks : [...verified.checks, restore.check];
    const manifest = await withBackupStore(context.config, (store) =>
      writeManifest(store, facts, { purpose: 'manual', runId: context.runId, operator: context.operator }, checks, restore.restoreTested),
    );
    context.note(`backup ${manifest.id} is complete and verified`, { backupId: manifest.id });
    return { backupId: manifest.id, manifest: manifestKey(manifest.id) };
  },
  async undo(context, { backupId }) {
    await withBackupStore(context.config, (store) => store.delete(manifestKey(backupId)));
  },
  async undoInterrupted(context) {
    const facts = factsOf(context);
    await withBackupStore(context.config, (store) => store.delete(manifestKey(facts.id)));
  },
});

export const dbBackup = defineProcedure({
  id: 'db.backup',
  command: 'db backup',
  title: 'Database backup',
  runbookSection: 'Database Backup',
  whenToUse: 'Daily (automated) or before major changes (manual).',
  risk: 'low',
  expectedDuration: '5-10 minutes',
  issueType: 'database',
  alertChannels: ['#ops-backups'],
  params,
  locks: (_params, config) => [databaseLockResource(config)],

  prerequisites: [
    {
      name: 'database reachable',
      run: async (context) => {
        if (context.config.databaseUrl === undefined) {
          const source = await sourceOf(context);
          if (source.kind === 'embedded-via-owner') return ownerTakesDumps(source.pool, source.ownerPid);
          return { ok: true, detail: `embedded PGlite${source.kind === 'embedded' ? ` under ${source.embedded.dataDir}` : ''}, owned by this process` };
        }
        const version = await serverVersionAt(context.config.databaseUrl);
        return { ok: true, detail: `PostgreSQL ${version.text}, database ${applicationDatabaseName(context.config)}` };
      },
    },
    {
      name: "pg_dump installed, at least the server's major version",
      run: async (context) => {
        if (context.config.databaseUrl === undefined)
          return { ok: true, detail: "the embedded database is dumped by PGlite's own pg_dump, in the process that owns it" };
        return pgDumpCheck(context.config, context.config.databaseUrl);
      },
    },
    {
      name: 'backup storage writable',
      run: async (context) =>
        withBackupStore(context.config, async (store) => {
          await store.checkWritable();
          return { ok: true, detail: `${store.location} accepts writes` };
        }),
    },
  ],

  steps: [dump, verifyUpload, verifyRestore, manifest],

  verification: [
    {
      name: 'the backup is listed as complete, and its manifest matches the stored dump',
      run: async (context) => {
        const facts = factsOf(context);
        return withBackupStore(context.config, async (store) => {
          const manifest = await readManifest(store, facts.id);
          const dump = await store.head(dumpKey(facts.id));
          const ok = dump !== undefined && dump.bytes === manifest.dump.bytes && manifest.dump.sha256 === facts.dump.sha256;
          return ok
            ? {
                ok,
                detail: `${facts.id}: ${manifest.dump.bytes} bytes, ${manifest.tables.length} tables, schema version ${manifest.schemaVersion.version ?? 'none'}`,
              }
            : { ok, detail: `${facts.id}: the manifest and the stored dump disagree`, remedy: 'take the backup again' };
        });
      },
    },
  ],
});

/**
 * Its CLI entry (src/ops/procedures/index.ts lists it); here so that `shipshape db backup` can
 * build its command without loading every other procedure (src/cli/commands/db-backup.ts).
 */
export const dbBackupEntry = procedureEntry(dbBackup, {
  options: [
    { flags: '--verify-restore', description: 'also restore into a scratch database and compare every row count' },
    { flags: '--compression <level>', description: 'pg_dump compression level 0-9 (default BACKUP_COMPRESSION_LEVEL, 1)' },
  ],
});

/**
 * A verified backup taken inside another procedure's run (a migration's `--backup`, the
 * maintenance window): the same kind `db backup` takes, sealed only once verified, and
 * labelled with that run.
 */
export async function takeBackupInRun(context: RunContext<unknown>, purpose: string): Promise<BackupManifest> {
  const database = await context.database();
  return withBackupStore(context.config, (store) =>
    takeVerifiedBackup({
      config: context.config,
      profile: context.profile,
      store,
      source: backupSourceFor(context.config, database),
      restoreTest: false,
      signal: context.signal,
      onProgress: (bytes) => context.progress({ bytes, label: 'backup' }),
      context: { purpose, runId: context.runId, operator: context.operator },
    }),
  );
}

/** What to dump: DATABASE_URL needs no connection of ours; the embedded database is dumped where it is open. */
async function sourceOf(context: Context): Promise<BackupSource> {
  const { config } = context;
  if (config.databaseUrl !== undefined) return { kind: 'postgres', url: config.databaseUrl, databaseName: applicationDatabaseName(config) };
  return backupSourceFor(config, await context.database());
}

function factsOf(context: Context): DumpFacts {
  return requireOutput(context, dump).facts;
}
