/**
 * Runbook: "Restore Database" — `shipshape db restore <backup> [--target <database>] [--jobs N] [--cleanup]`.
 *
 * When: data corruption, accidental deletion, disaster recovery. Critical: it replaces the
 * database, so a second operator approves.
 *
 * Restore beside, then swap. The runbook restores in place (`pg_restore --clean`), with the
 * application down for the whole load; in place also cannot work on a database that ran
 * pg-boss's workers (its partitioned queue tables cannot be dropped: "cannot drop inherited
 * constraint"). So the dump is loaded into a new database on the same server and everything
 * the runbook checks afterwards is checked there, while the live database keeps serving:
 *
 * Prerequisites: the backup exists, is complete, and verifies (size, SHA-256 and
 * `pg_restore --list` on a fresh read); pg_restore is installed and can read it; we may create
 * and rename databases; the server has room for both copies; STATE_DIR has room for the download.
 *
 *   1-2. #incidents hears of the run (the engine announces it).
 *   3-6. List and choose: the <backup> argument. Download it to STATE_DIR/restore/<run>/
 *        (a local, seekable file is what allows `pg_restore --jobs`).
 *   7.   The runbook's safety backup is not taken: the live database itself is kept, renamed
 *        `<db>__pre_restore_<run>`, and the way back is renaming it back (instant, and it
 *        cannot fail the way loading a second dump can). See docs/runbook-deviations.md.
 *   9.   pg_restore --no-owner --no-privileges --jobs N --exit-on-error into a new database
 *        `<db>__incoming_<run>` (nothing to drop, so no --clean).
 *   10.  Verify critical tables there: row counts equal the manifest's; the newest row is there.
 *   11.  Run migrations there (the backup may predate the code); re-apply the GDPR erasure
 *        ledger there (accounts erased after the backup must not come back with it).
 *   1, 8, 12. Maintenance mode on, terminate the live database's sessions, rename it to
 *        `<db>__pre_restore_<run>`, rename the incoming database into place, maintenance mode
 *        back to what it was. The application is fully unavailable only for this swap.
 *   Then the local files are removed (they hold personal data).
 *   Verify: the database answers under its own name with the restored data; no migration is
 *   pending; maintenance mode is as it was before the run; the replaced database is kept.
 *
 * Rollback (`shipshape runs rollback <run>`, also after the run succeeded): the swap is
 * renamed back, the incoming database dropped, maintenance mode put back. Kept pre-restore
 * databases are dropped by `--cleanup` (those of earlier runs, with the disk they held).
 *
 * The runbook keeps no journal of its own; ours lives in STATE_DIR/runs, outside the
 * database being replaced (the engine's journal). `--target <database>` restores into
 * another database on the same server (created if absent), without maintenance mode.
 * On the embedded database the same shape: the dump is loaded into a new PGlite folder beside
 * the live one and swapped in, the replaced folder kept as `db/data.pre-restore-<run>`;
 * `shipshape serve` must be stopped first (checked).
 */
import { readdir, rm, rmdir, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { z } from 'zod';
import { Migrator } from '../../db/migrator.ts';
import { quoteIdent, type Pool } from '../../db/pool.ts';
import { firstRow } from '../../db/rows.ts';
import type { Maintenance } from '../../domain/app-state.ts';
import { announceFrom, switchMaintenance } from '../../domain/maintenance-switch.ts';
import { procedureOwner } from './announcements.ts';
import { reapplyErasureLedger } from '../../domain/erasure.ts';
import { withLegalStore } from '../../domain/legal-store.ts';
import { ShipError, describeError } from '../../errors.ts';
import { isBackupId } from '../backups/backup-id.ts';
import { withBackupStore } from '../backups/backup-store.ts';
import { formatBytes } from '../../bytes.ts';
import { readManifest } from '../backups/catalog.ts';
import { databaseExists, withClient } from '../backups/connections.ts';
import { countNamedTables, qualifiedName, readRecentData, rowReader, sameInstant } from '../backups/database-facts.ts';
import { applicationDatabaseName, DATABASE_NAME_PATTERN } from '../backups/database-target.ts';
import { fetchDump, localDumpPath, restoreWorkDir } from '../backups/fetch-backup.ts';
import type { BackupManifest } from '../backups/manifest.ts';
import { embeddedDataDir, ensureEmbeddedIdle, preRestoreDir } from '../backups/restore-embedded.ts';
import { loadBeside, notForEmbedded, unloadBeside, type LoadOptions } from '../backups/restore-load.ts';
import { pgRestoreArguments, requirePgRestoreFor } from '../backups/restore-postgres.ts';
import { layoutOf, restoreTargetFor, withLivePool, withPoolOn, withRestoredPool, type PostgresTarget, type RestoreTarget } from '../backups/restore-target.ts';
import { swapBack, swapIn } from '../backups/swap.ts';
import { reconcileRestored, type ReconcileResult } from '../backups/reconcile.ts';
import { verifyStoredDump } from '../backups/verify-stored.ts';
import { defineProcedure, type JsonObject, outputOf, requireOutput, type RunContext, stepFor } from '../engine/types.ts';

const params = z.object({
  backup: z.string().refine(isBackupId, 'is not a backup id (they look like b-20261127-001530-app; `shipshape db backups` lists them)'),
  /** Restore into this database on the same server instead of the application's. */
  target: z.string().regex(DATABASE_NAME_PATTERN, 'must be a plain database name (letters, digits, _ $ -; at most 63)').optional(),
  /** pg_restore --jobs; default BACKUP_RESTORE_JOBS. */
  jobs: z.coerce.number().int().min(1).max(64).optional(),
});
type Params = z.output<typeof params>;
type Context = RunContext<Params>;

const MAINTENANCE_MESSAGE = 'We are restoring data. We will be back shortly.';

type MaintenanceState = Pick<Maintenance, 'enabled' | 'mode' | 'message'>;
const maintenanceState = z.object({ enabled: z.boolean(), mode: z.enum(['full', 'read-only']).default('full'), message: z.string().nullable() });

// The steps whose outputs later steps and checks read, in order (listed in `steps` below with the others).
const step = stepFor<Params>();

const readOnly = step({
  id: 'read-only',
  title: 'Put the application in read-only mode (reads served, writes answer 503; #incidents is told the restore started)',
  output: z.object({ skipped: z.boolean(), previous: maintenanceState.optional(), at: z.string().optional() }),
  describe: (context) =>
    isApplication(context)
      ? [
          `UPDATE app_state SET maintenance_enabled = true, maintenance_mode = 'read-only', maintenance_message = '${MAINTENANCE_MESSAGE}'   -- every API instance stops accepting writes within a second`,
        ]
      : [`not needed: --target ${context.params.target ?? ''} is not the application's database`],
  async run(context) {
    if (!isApplication(context)) return { skipped: true };
    const target = targetOf(context);
    // Disaster recovery into a new, empty server: there is no application state to switch yet.
    if (target.kind === 'postgres' && !(await layoutOf(target)).live) {
      context.note(`database ${target.name} does not exist yet: nothing serves from it, so there is no maintenance mode to switch`);
      return { skipped: true };
    }
    const changed = await withLivePool(target, context.config, context.logger, async (pool) => {
      if (!(await hasAppState(pool))) return undefined;
      return switchMaintenance(
        pool,
        { enabled: true, mode: 'read-only', message: MAINTENANCE_MESSAGE, owner: procedureOwner(context) },
        announceFrom(context.config, context.logger),
      );
    });
    if (changed === undefined) {
      context.note('the database has no app_state table (an empty or foreign database): no maintenance mode to switch');
      return { skipped: true };
    }
    context.note(
      changed.previous.enabled
        ? `maintenance mode was already on (${changed.previous.mode}); read-only now`
        : 'read-only mode on: reads are served, writes answer 503',
    );
    return {
      skipped: false,
      previous: { enabled: changed.previous.enabled, mode: changed.previous.mode, message: changed.previous.message },
      at: new Date().toISOString(),
    };
  },
  async undo(context, output) {
    if (output.skipped || output.previous === undefined) return;
    await setLiveMaintenance(context, output.previous);
  },
  // Cut off before it reported what it replaced: the usual state before a restore is "off".
  async undoInterrupted(context) {
    if (!isApplication(context)) return;
    await setLiveMaintenance(context, { enabled: false, mode: 'full', message: null });
  },
});

const download = step({
  id: 'fetch',
  title: 'Download backup (to a local, seekable file)',
  output: z.object({ file: z.string(), bytes: z.number() }),
  describe: (context) => [
    `GET ${context.config.backupStorageUrl}/${context.params.backup}/dump → ${localDumpPath(context.config.stateDir, context.runId, context.params.backup)}   -- SHA-256 checked against the manifest`,
  ],
  async run(context) {
    const manifest = await manifestOf(context);
    const file = localDumpPath(context.config.stateDir, context.runId, manifest.id);
    const fetched = await withBackupStore(context.config, (store) =>
      fetchDump(store, manifest, file, {
        signal: context.signal,
        onProgress: (bytes) => context.progress({ bytes, totalBytes: manifest.dump.bytes, label: 'download' }),
      }),
    );
    context.note(fetched.reused ? `${file} was already downloaded and matches` : `downloaded ${fetched.bytes} bytes, SHA-256 matches the manifest`);
    return { file, bytes: fetched.bytes };
  },
  async undo(context, output) {
    await rm(output.file, { force: true });
    await rmdir(restoreWorkDir(context.config.stateDir, context.runId)).catch(() => undefined);
  },
  async undoInterrupted(context) {
    const file = localDumpPath(context.config.stateDir, context.runId, context.params.backup);
    await rm(file, { force: true });
    await rm(`${file}.partial`, { force: true });
  },
});

const restore = step({
  id: 'restore',
  title: 'Restore database beside the live one (pg_restore --no-owner --no-privileges --jobs N into a new database)',
  output: z.object({ how: z.string(), leftOutSettings: z.array(z.string()), hadLive: z.boolean(), oid: z.number().nullable() }),
  describe: (context) => {
    const target = targetOf(context);
    const file = localDumpPath(context.config.stateDir, context.runId, context.params.backup);
    if (target.kind === 'embedded') {
      return [
        'check that no other process has the embedded database open (`shipshape serve` must be stopped)',
        `replay ${file} (plain SQL) into a new PGlite folder ${embeddedDataDir(target.stateDir)}.restoring-${context.runId}`,
        `swap it in for ${embeddedDataDir(target.stateDir)}; the replaced folder is kept as ${preRestoreDir(target.stateDir, context.runId)}`,
      ];
    }
    return [
      `CREATE DATABASE ${quoteIdent(target.incoming)} TEMPLATE template0;   -- beside ${target.name}, which keeps serving`,
      `pg_restore ${pgRestoreArguments(target.incoming, context.params.jobs ?? context.config.backups.restoreJobs, file).join(' ')}`,
      '   (plain SQL dumps instead: replayed in one transaction, settings the server does not know left out)',
    ];
  },
  async run(context) {
    const manifest = await manifestOf(context);
    const { file } = requireOutput(context, download);
    const target = targetOf(context);
    const hadLive = target.kind === 'embedded' ? true : (await layoutOf(target)).live || (await layoutOf(target)).preRestore;
    if (target.kind === 'embedded') await ensureEmbeddedIdle(target.stateDir, context.logger);
    const loaded = await loadBeside(loadOptions(context), manifest, file);
    if (loaded.leftOutSettings.length > 0) context.note(`left out settings this server does not know: ${loaded.leftOutSettings.join(', ')}`);
    context.note(`backup ${manifest.id} loaded ${target.kind === 'postgres' ? `into ${target.incoming}` : ''}: ${loaded.how}`);
    const oid =
      target.kind === 'postgres'
        ? await withClient(
            target.adminUrl,
            async (client) =>
              (await client.query<{ oid: number }>('SELECT oid::int AS oid FROM pg_database WHERE datname = $1::text', [target.incoming])).rows[0]?.oid ?? null,
          )
        : null;
    return { how: loaded.how, leftOutSettings: loaded.leftOutSettings, hadLive, oid };
  },
  async undo(context) {
    context.note(await unloadBeside({ target: targetOf(context), runId: context.runId, logger: context.logger }));
  },
  async undoInterrupted(context) {
    context.note(await unloadBeside({ target: targetOf(context), runId: context.runId, logger: context.logger }));
  },
});

const erasureLedger = step({
  id: 'erasure-ledger',
  title: 'Re-apply the GDPR erasure ledger (accounts erased after the backup stay erased)',
  output: z.object({
    erased: z.number(),
    ledgerRecords: z.number(),
    mergedFromMirror: z.number(),
    countsAfter: z.record(z.string(), z.number().nullable()),
  }),
  describe: (context) => [
    `-- on ${restoredName(context)}`,
    'merge the ledger mirror in LEGAL_STORAGE_URL into erasure_ledger, then erase again every account it lists that the restored data contains',
  ],
  async run(context) {
    const result = await withLegalStore(context.config, (legalStore) =>
      withRestoredPool(targetOf(context), context.config, context.logger, async (pool) => {
        const reapplied = await reapplyErasureLedger(pool, { usersTable: context.profile.users, legalStore, operator: context.operator });
        return { ...reapplied, countsAfter: await criticalCounts(pool, context) };
      }),
    );
    context.note(
      `erased again ${result.erased} account(s) the backup still held (ledger: ${result.ledgerRecords} record(s), ${result.mergedFromMirror} merged from its mirror)`,
    );
    return result;
  },
  // The restore step's undo drops the whole restored copy, which includes these rows.
  async undo() {},
  async undoInterrupted() {},
});

const maintenanceOn = step({
  id: 'maintenance-on',
  title: 'Enable maintenance mode (read-only until now; fully unavailable for the swap only)',
  output: z.object({ skipped: z.boolean(), previous: maintenanceState.nullable().optional(), at: z.string().optional() }),
  describe: (context) =>
    isApplication(context)
      ? [
          `UPDATE app_state SET maintenance_enabled = true, maintenance_message = '${MAINTENANCE_MESSAGE}'   -- on the live database: every API instance answers 503 within a second`,
          `the same on ${restoredName(context)}, so it comes up in maintenance`,
        ]
      : [`not needed: --target ${context.params.target ?? ''} is not the application's database`],
  async run(context) {
    if (!isApplication(context)) return { skipped: true };
    const target = targetOf(context);
    // Disaster recovery into a new, empty server: nothing serves from the live name yet.
    const live = target.kind === 'embedded' || (await layoutOf(target)).live;
    const changed = live
      ? await withLivePool(target, context.config, context.logger, async (pool) =>
          (await hasAppState(pool))
            ? switchMaintenance(
                pool,
                { enabled: true, message: MAINTENANCE_MESSAGE, owner: procedureOwner(context) },
                announceFrom(context.config, context.logger),
              )
            : undefined,
        )
      : undefined;
    // The restored database comes up in maintenance too; nothing serves from it before the swap, so nobody is told.
    await withRestoredPool(target, context.config, context.logger, async (pool) => {
      if (await hasAppState(pool)) await switchMaintenance(pool, { enabled: true, message: MAINTENANCE_MESSAGE, owner: procedureOwner(context) }, null);
    });
    if (changed === undefined) {
      context.note(
        live
          ? 'the live database has no app_state table (an empty or foreign database): no maintenance mode to switch'
          : `database ${targetName(context)} does not exist yet: nothing serves from it`,
      );
      return { skipped: false, previous: null };
    }
    context.note(
      changed.previous.enabled && changed.previous.mode === 'full'
        ? 'maintenance mode was already on'
        : 'maintenance mode on: the application is fully unavailable until the swap is done',
    );
    return {
      skipped: false,
      previous: { enabled: changed.previous.enabled, mode: changed.previous.mode, message: changed.previous.message },
      at: new Date().toISOString(),
    };
  },
  async undo(context, output) {
    if (output.skipped || output.previous === null || output.previous === undefined) return;
    await setLiveMaintenance(context, output.previous);
  },
  // Cut off before it reported what it replaced: before it, the application was read-only (or as the read-only step found it).
  async undoInterrupted(context) {
    if (!isApplication(context)) return;
    await setLiveMaintenance(context, readOnlyState(context));
  },
});

export const dbRestore = defineProcedure({
  id: 'db.restore',
  command: 'db restore',
  title: 'Restore database',
  runbookSection: 'Restore Database',
  whenToUse: 'Data corruption, accidental deletion, disaster recovery.',
  risk: 'critical',
  expectedDuration: '30-60 minutes',
  issueType: 'database',
  alertChannels: ['#incidents'],
  params,
  locks: (p, config) => [`database:${p.target ?? applicationDatabaseName(config)}`],
  replacesDatabase: true,
  undoAfterSuccess: 'the replaced database is kept: rolling back renames it back into place and drops the restored copy',

  prerequisites: [
    {
      name: 'the backup exists and is complete',
      run: async (context) => {
        const manifest = await manifestOf(context);
        return {
          ok: true,
          detail: `${manifest.id}: database ${manifest.database.name}, taken ${manifest.createdAt}, ${manifest.dump.bytes} bytes (${manifest.dump.format}, ${manifest.dump.tool}), schema version ${manifest.schemaVersion.version ?? 'none'}`,
        };
      },
    },
    {
      name: 'the backup verifies (size, SHA-256 and pg_restore --list on a fresh read)',
      run: async (context) => {
        const manifest = await manifestOf(context);
        try {
          const checks = await withBackupStore(context.config, (store) =>
            verifyStoredDump({ config: context.config, store, facts: manifest, signal: context.signal }),
          );
          return { ok: true, detail: checks.join('; ') };
        } catch (error) {
          if (error instanceof ShipError && error.code === 'SHIP_ERR_BACKUP_NOT_VERIFIED') return { ok: false, detail: error.message };
          throw error;
        }
      },
    },
    {
      name: 'pg_restore installed and able to read the backup',
      run: async (context) => {
        const manifest = await manifestOf(context);
        const target = targetOf(context);
        if (manifest.dump.format === 'plain') {
          return {
            ok: true,
            detail: `a plain SQL dump: replayed ${target.kind === 'embedded' ? 'into a new embedded database' : 'through the driver in one transaction'}, no pg_restore needed`,
          };
        }
        if (target.kind === 'embedded') return { ok: false, detail: notForEmbedded(manifest.id).message };
        try {
          const tool = await requirePgRestoreFor(context.config, manifest);
          return { ok: true, detail: `pg_restore ${tool.version} (${tool.command}) reads archives of ${manifest.dump.tool}` };
        } catch (error) {
          if (error instanceof ShipError && error.code === 'SHIP_ERR_TOOL_MISSING') return { ok: false, detail: error.message };
          throw error;
        }
      },
    },
    {
      name: 'the target database can be restored beside and swapped',
      run: async (context) => {
        const target = targetOf(context);
        if (target.kind === 'embedded') {
          try {
            await ensureEmbeddedIdle(target.stateDir, context.logger);
          } catch (error) {
            if (error instanceof ShipError) return { ok: false, detail: error.message };
            throw error;
          }
          return { ok: true, detail: 'the embedded database is not open in any other process' };
        }
        return withClient(target.adminUrl, async (client) => {
          const { rows } = await client.query<{ exists: boolean; allowed: boolean }>(
            `SELECT d.datname IS NOT NULL AS exists,
                    r.rolsuper OR (r.rolcreatedb AND (d.datname IS NULL OR pg_has_role(r.oid, d.datdba, 'MEMBER'))) AS allowed
               FROM pg_catalog.pg_roles r
               LEFT JOIN pg_catalog.pg_database d ON d.datname = $1::text
              WHERE r.rolname = current_user`,
            [target.name],
          );
          const row = rows[0];
          if (row === undefined || !row.allowed) {
            return {
              ok: false,
              detail: `the role connecting as DATABASE_URL may not create databases${row?.exists ? ` and rename ${target.name}` : ''}`,
              remedy: 'connect as the database owner with CREATEDB, or as a superuser',
            };
          }
          for (const name of [target.incoming, target.preRestore]) {
            if (await databaseExists(client, name))
              return { ok: false, detail: `a database ${name} already exists (left by an earlier attempt?)`, remedy: 'inspect it and drop it, then run again' };
          }
          return {
            ok: true,
            detail: row.exists
              ? `the backup is restored into ${target.incoming}; then ${target.name} is kept as ${target.preRestore} and ${target.incoming} renamed into its place`
              : `${target.name} does not exist yet: the backup is restored into ${target.incoming}, then renamed to ${target.name}`,
          };
        });
      },
    },
    {
      name: 'room on the database server for both copies',
      run: async (context) => {
        const target = targetOf(context);
        const manifest = await manifestOf(context);
        if (target.kind === 'embedded') {
          const live = await folderBytes(embeddedDataDir(target.stateDir));
          const needed = Math.max(live, manifest.dump.bytes * 2);
          const free = await freeBytes(context.config.stateDir);
          const detail = `the new embedded folder needs about ${formatBytes(needed)} beside the live one (${formatBytes(live)}); ${formatBytes(free)} free under ${context.config.stateDir}`;
          return free >= needed
            ? { ok: true, detail }
            : {
                ok: false,
                detail: `${detail}: ${formatBytes(needed - free)} missing`,
                remedy: 'free disk space, or drop old pre-restore copies with `shipshape db restore --cleanup`',
              };
        }
        return withClient(target.adminUrl, async (client) => {
          const room = await serverRoom(client, target, manifest.dump.bytes);
          if (room.free === undefined)
            return { ok: true, detail: `unverified: ${room.estimate}; the free disk of the server's data directory cannot be read from here (${room.why})` };
          const detail = `${room.estimate}; ${formatBytes(room.free)} free in the data directory ${room.dataDirectory}`;
          if (room.free >= room.needed) return { ok: true, detail };
          return {
            ok: false,
            detail: `${detail}: ${formatBytes(room.needed - room.free)} missing`,
            remedy: 'free disk space on the database server, or drop old pre-restore databases with `shipshape db restore --cleanup`',
          };
        });
      },
    },
    {
      name: 'disk space under STATE_DIR for the download',
      run: async (context) => {
        const manifest = await manifestOf(context);
        const free = await freeBytes(context.config.stateDir);
        const needed = manifest.dump.bytes;
        const detail = `${formatBytes(free)} free under ${context.config.stateDir}, ${formatBytes(needed)} needed`;
        return free >= needed
          ? { ok: true, detail }
          : { ok: false, detail: `${detail}: ${formatBytes(needed - free)} missing`, remedy: 'free disk space, or point STATE_DIR at a larger disk' };
      },
    },
  ],

  steps: [
    readOnly,
    download,
    restore,
    {
      id: 'verify-tables',
      title: 'Verify critical tables (row counts match the manifest; the newest rows are present)',
      describe: (context) => [
        `-- on ${restoredName(context)}`,
        ...context.profile.criticalTables.map((table) => `SELECT count(*) FROM ${qualifiedName(table)};   -- must equal the manifest's count`),
        `SELECT max(${context.profile.recentData.timestampColumn}) FROM ${qualifiedName(context.profile.recentData.table)};   -- must equal the manifest's newest`,
      ],
      async run(context): Promise<JsonObject> {
        const manifest = await manifestOf(context);
        const expected = new Map(manifest.tables.map((table) => [table.name, table.rows]));
        const found = await withRestoredPool(targetOf(context), context.config, context.logger, async (pool) => {
          const read = rowReader(pool);
          return { counts: await countNamedTables(read, context.profile.criticalTables), recent: await readRecentData(read, context.profile) };
        });
        const problems = found.counts
          .filter((table) => table.rows !== (expected.get(table.name) ?? null))
          .map((table) => `${table.name}: ${table.rows ?? 'missing'} restored, ${expected.get(table.name) ?? 'absent'} in the backup`);
        if (manifest.recentData !== null && !sameInstant(found.recent?.newestEpoch ?? null, manifest.recentData.newestEpoch)) {
          problems.push(
            `newest ${manifest.recentData.table}.${manifest.recentData.column} is ${found.recent?.newest ?? 'missing'}, the backup's is ${manifest.recentData.newest ?? 'none'}`,
          );
        }
        if (problems.length > 0)
          throw new ShipError('SHIP_ERR_STEP_FAILED', `The restored database does not match backup ${manifest.id}: ${problems.join('; ')}.`);
        context.note(
          `${found.counts.map((table) => `${table.name} ${table.rows}`).join(', ')}; newest ${found.recent?.table ?? ''} row ${found.recent?.newest ?? 'none'}`,
        );
        return { counts: found.counts.map((table) => ({ name: table.name, rows: table.rows })), newest: found.recent?.newest ?? null };
      },
    },
    {
      id: 'migrate',
      title: 'Run migrations (if needed)',
      describe: (context) => [
        `-- on ${restoredName(context)}`,
        `apply every migration in ${context.profile.migrations.directory} not yet in ${context.profile.migrations.trackingTable}, each in its own transaction`,
      ],
      async run(context): Promise<JsonObject> {
        const applied = await withRestoredPool(targetOf(context), context.config, context.logger, async (pool) => {
          const outcome = await new Migrator(pool, context.profile.migrations, context.logger).up();
          if (outcome.error !== undefined) throw outcome.error;
          return outcome.results.filter((result) => result.status === 'success').map((result) => `${result.version}_${result.name}`);
        });
        context.note(applied.length === 0 ? 'the backup is at the current schema version: nothing to apply' : `applied ${applied.join(', ')}`);
        return { applied };
      },
      // The restore step's undo drops the whole restored copy, which takes its schema with it.
      async undo() {},
      async undoInterrupted() {},
    },
    erasureLedger,
    maintenanceOn,
    {
      id: 'swap',
      title: 'Terminate active connections and swap the restored database in (the replaced one is kept)',
      describe: (context) => {
        const target = targetOf(context);
        if (target.kind === 'embedded')
          return ['nothing to do: the restore step swapped the new folder in; the embedded database opens with the next process that uses it'];
        return [
          `ALTER DATABASE ${quoteIdent(target.name)} WITH ALLOW_CONNECTIONS false;`,
          `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '${target.name}' AND pid <> pg_backend_pid();`,
          `ALTER DATABASE ${quoteIdent(target.name)} RENAME TO ${quoteIdent(target.preRestore)};   -- then ALLOW_CONNECTIONS true again under that name`,
          `reconcile ${target.incoming} with ${target.preRestore}: scheduled pushes, notification sends, maintenance notices, queue jobs and schedule occurrences done after the backup, and admin tokens revoked since, are recorded as done`,
          `ALTER DATABASE ${quoteIdent(target.incoming)} RENAME TO ${quoteIdent(target.name)};`,
        ];
      },
      async run(context): Promise<JsonObject> {
        const target = targetOf(context);
        if (target.kind === 'embedded') return { swapped: false };
        let reconciled: ReconcileResult | undefined;
        const result = await swapIn(target, {
          signal: context.signal,
          // The replaced database is out of the application's reach now: what it did after the backup is final.
          whileOffline: async () => {
            if (!(await layoutOf(target)).preRestore) return;
            reconciled = await withPoolOn(target.incomingUrl, context.config, context.logger, (restored) =>
              withPoolOn(target.preRestoreUrl, context.config, context.logger, (replaced) => reconcileRestored(restored, replaced, context.runId)),
            );
          },
        });
        for (const note of result.notes) context.note(note);
        if (reconciled !== undefined)
          context.note(`reconciled with ${target.preRestore} (work done after the backup is not done again): ${reconcileText(reconciled)}`);
        return {
          swapped: true,
          reconciled: reconciled === undefined ? null : { ...reconciled },
          keptAs: result.keptPreRestore ? target.preRestore : null,
          disconnected: result.disconnected.map((backend) => ({
            pid: backend.pid,
            user: backend.user,
            application: backend.applicationName,
            client: backend.clientAddr,
          })),
        };
      },
      async undo(context) {
        await swapBackHere(context);
      },
      async undoInterrupted(context) {
        await swapBackHere(context);
      },
    },
    {
      id: 'maintenance-off',
      title: 'Disable maintenance mode',
      describe: (context) =>
        isApplication(context)
          ? ['UPDATE app_state SET maintenance_enabled = <as before the restore, normally false>']
          : ['not needed: --target is not the application database'],
      async run(context): Promise<JsonObject> {
        if (!isApplication(context)) return { skipped: true };
        const before = stateBefore(context);
        await setLiveMaintenance(context, before);
        context.note(before.enabled ? 'maintenance mode stays on: it was on before the restore' : 'maintenance mode off');
        // What the users saw: read-only from the first step until maintenance, then fully unavailable until now.
        const since = (value: string | undefined) => (value === undefined ? Number.NaN : Date.parse(value));
        const readOnlyAt = since(outputOf(context, readOnly)?.at);
        const maintenanceAt = since(outputOf(context, maintenanceOn)?.at);
        const readOnlySeconds = Number.isFinite(readOnlyAt) && Number.isFinite(maintenanceAt) ? (maintenanceAt - readOnlyAt) / 1000 : null;
        const unavailableSeconds = Number.isFinite(maintenanceAt) ? (Date.now() - maintenanceAt) / 1000 : null;
        if (unavailableSeconds !== null) {
          context.note(
            `the application was read-only for ${readOnlySeconds === null ? 'an unknown time' : `${readOnlySeconds.toFixed(1)} s`} and fully unavailable for ${unavailableSeconds.toFixed(1)} s`,
          );
        }
        return { skipped: false, enabled: before.enabled, readOnlySeconds, unavailableSeconds };
      },
      async undo(context, output) {
        if (output.skipped === true) return;
        await setLiveMaintenance(context, { enabled: true, mode: 'full', message: MAINTENANCE_MESSAGE });
      },
      async undoInterrupted(context) {
        if (!isApplication(context)) return;
        await setLiveMaintenance(context, { enabled: true, mode: 'full', message: MAINTENANCE_MESSAGE });
      },
    },
    {
      id: 'clean-up',
      title: 'Clean up local files',
      describe: (context) => [`rm -r ${restoreWorkDir(context.config.stateDir, context.runId)}   -- the downloaded dumps hold personal data`],
      async run(context): Promise<JsonObject> {
        await rm(restoreWorkDir(context.config.stateDir, context.runId), { recursive: true, force: true });
        return {};
      },
    },
  ],

  verification: [
    {
      name: 'the database answers under its own name with the restored data',
      run: async (context) => {
        const target = targetOf(context);
        if (target.kind === 'postgres') {
          // Renames keep a database's oid: the live name must now be the database the backup was loaded into.
          // (Its row counts are not compared: the application writes to it as soon as maintenance is off.)
          const restoredOid = outputOf(context, restore)?.oid;
          const liveOid = await withClient(
            target.adminUrl,
            async (client) =>
              (await client.query<{ oid: number }>('SELECT oid::int AS oid FROM pg_database WHERE datname = $1::text', [target.name])).rows[0]?.oid,
          );
          if (liveOid === undefined) return { ok: false, detail: `${target.name} is not open under its own name` };
          if (liveOid !== restoredOid)
            return { ok: false, detail: `${target.name} (oid ${liveOid}) is not the database the backup was loaded into (oid ${String(restoredOid)})` };
          const counts = await withLivePool(target, context.config, context.logger, (pool) => criticalCounts(pool, context));
          return {
            ok: true,
            detail: `${target.name} is the restored database (oid ${liveOid}): ${Object.entries(counts)
              .map(([name, rows]) => `${name} ${rows ?? 'missing'}`)
              .join(', ')}`,
          };
        }
        const expected = outputOf(context, erasureLedger)?.countsAfter ?? {};
        const counts = await withLivePool(target, context.config, context.logger, (pool) => criticalCounts(pool, context));
        const differ = Object.entries(counts).filter(([name, rows]) => expected[name] !== rows);
        const detail = Object.entries(counts)
          .map(([name, rows]) => `${name} ${rows ?? 'missing'}`)
          .join(', ');
        return differ.length === 0 ? { ok: true, detail } : { ok: false, detail: `${detail} — expected ${JSON.stringify(expected)}` };
      },
    },
    {
      name: 'no migration is pending',
      run: async (context) => {
        const pending = await withLivePool(targetOf(context), context.config, context.logger, (pool) =>
          new Migrator(pool, context.profile.migrations, context.logger).pending(),
        );
        return pending.length === 0
          ? { ok: true, detail: 'schema is current' }
          : { ok: false, detail: `pending: ${pending.map((file) => file.fileName).join(', ')}` };
      },
    },
    {
      name: 'maintenance mode is as before the restore',
      run: async (context) => {
        if (!isApplication(context)) return { ok: true, detail: 'not the application database: maintenance mode untouched' };
        const wanted = stateBefore(context).enabled;
        const now = await withLivePool(targetOf(context), context.config, context.logger, async (pool) => {
          if (!(await hasAppState(pool))) return false;
          const { rows } = await pool.query<{ enabled: boolean }>('SELECT maintenance_enabled AS enabled FROM app_state');
          return rows[0]?.enabled ?? false;
        });
        return now === wanted
          ? { ok: true, detail: `maintenance mode ${now ? 'on' : 'off'}` }
          : { ok: false, detail: `maintenance mode is ${now ? 'on' : 'off'}, it should be ${wanted ? 'on' : 'off'}` };
      },
    },
    {
      name: 'the replaced database is kept (the way back)',
      run: async (context) => {
        const target = targetOf(context);
        if (target.kind === 'embedded') {
          const kept = preRestoreDir(target.stateDir, context.runId);
          const there = (await stat(kept).catch(() => undefined)) !== undefined;
          return there ? { ok: true, detail: `kept as ${kept}` } : { ok: true, detail: 'there was no embedded database before the restore: nothing to keep' };
        }
        const layout = await layoutOf(target);
        if (layout.preRestore)
          return {
            ok: true,
            detail: `kept as ${target.preRestore}: \`shipshape runs rollback ${context.runId}\` renames it back; \`shipshape db restore --cleanup\` drops it`,
          };
        if (outputOf(context, restore)?.hadLive === false) return { ok: true, detail: `${target.name} did not exist before the restore: nothing to keep` };
        return { ok: false, detail: `${target.preRestore} is missing` };
      },
    },
  ],
});

/** The backup's manifest, read afresh each time: it is small, and a run may span an approval and a crash. */
function manifestOf(context: Context): Promise<BackupManifest> {
  return withBackupStore(context.config, (store) => readManifest(store, context.params.backup));
}

function targetOf(context: Context): RestoreTarget {
  return restoreTargetFor(context.config, context.runId, context.params.target);
}

function targetName(context: Context): string {
  const target = targetOf(context);
  return target.kind === 'embedded' ? 'the embedded database' : target.name;
}

/** Where the restored data is checked before it goes live. */
function restoredName(context: Context): string {
  const target = targetOf(context);
  return target.kind === 'embedded' ? 'the embedded database (swapped in by the restore step)' : target.incoming;
}

function isApplication(context: Context): boolean {
  return context.params.target === undefined || context.params.target === applicationDatabaseName(context.config);
}

function loadOptions(context: Context): LoadOptions {
  return {
    config: context.config,
    logger: context.logger,
    target: targetOf(context),
    runId: context.runId,
    jobs: context.params.jobs ?? context.config.backups.restoreJobs,
    signal: context.signal,
  };
}

/** Maintenance mode as it was before the run (normally off). */
function stateBefore(context: Context): MaintenanceState {
  return outputOf(context, readOnly)?.previous ?? { enabled: false, mode: 'full', message: null };
}

/** What the read-only step left: read-only mode, unless it was skipped (nothing to switch) or maintenance was fully on already. */
function readOnlyState(context: Context): MaintenanceState {
  const before = stateBefore(context);
  if (outputOf(context, readOnly)?.skipped === true || (before.enabled && before.mode === 'full')) return before;
  return { enabled: true, mode: 'read-only', message: MAINTENANCE_MESSAGE };
}

async function swapBackHere(context: Context): Promise<void> {
  const target = targetOf(context);
  if (target.kind === 'embedded') return;
  const hadLive = outputOf(context, restore)?.hadLive !== false;
  context.note(await swapBack(target, hadLive));
}

/** Sets maintenance mode on whatever database is live now; one without app_state (or none at all) has none to set. */
async function setLiveMaintenance(context: Context, state: MaintenanceState): Promise<void> {
  const target = targetOf(context);
  if (target.kind === 'postgres' && !(await layoutOf(target)).live) return;
  await withLivePool(target, context.config, context.logger, async (pool) => {
    if (await hasAppState(pool)) {
      await switchMaintenance(
        pool,
        { enabled: state.enabled, mode: state.mode, message: state.message, owner: procedureOwner(context), restoring: { setBy: null } },
        announceFrom(context.config, context.logger),
      );
    }
  });
}

async function hasAppState(pool: Pool): Promise<boolean> {
  const { rows } = await pool.query<{ found: boolean }>("SELECT to_regclass('app_state') IS NOT NULL AS found");
  return rows[0]?.found === true;
}

async function criticalCounts(pool: Pool, context: Context): Promise<Record<string, number | null>> {
  const counts = await countNamedTables(rowReader(pool), context.profile.criticalTables);
  return Object.fromEntries(counts.map((table) => [table.name, table.rows]));
}

function reconcileText(result: ReconcileResult): string {
  const parts = [
    [result.scheduledNotifications, 'scheduled push(es)'],
    [result.notificationJobs, 'notification send(s)'],
    [result.maintenanceNotices, 'maintenance notice(s)'],
    [result.noticeEmails, 'notice email(s)'],
    [result.queueJobs, 'queue job(s)'],
    [result.schedules, 'schedule occurrence(s)'],
    [result.revokedTokens, 'admin token revocation(s)'],
  ] as const;
  const changed = parts.filter(([count]) => count > 0).map(([count, what]) => `${count} ${what}`);
  return changed.length === 0 ? 'nothing had happened since the backup' : changed.join(', ');
}

async function freeBytes(folder: string): Promise<number> {
  const info = await statfs(folder);
  return info.bavail * info.bsize;
}

async function folderBytes(folder: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name)).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

/**
 * How much room the restored copy needs on the server (about the live database's size; without
 * one, four times the compressed dump), and how much its data directory has — when that can be
 * read: the setting needs a superuser (or pg_read_all_settings), and the disk must be this machine's.
 */
async function serverRoom(
  client: pg.Client,
  target: PostgresTarget,
  dumpBytes: number,
): Promise<{ needed: number; estimate: string; free?: number; dataDirectory?: string; why?: string }> {
  const { rows } = await client.query<{ size: string | null }>('SELECT pg_database_size(datname)::text AS size FROM pg_database WHERE datname = $1::text', [
    target.name,
  ]);
  const liveSize = rows[0]?.size === undefined || rows[0]?.size === null ? undefined : Number(rows[0].size);
  const needed = liveSize ?? dumpBytes * 4;
  const estimate =
    liveSize === undefined
      ? `the restored copy needs an estimated ${formatBytes(needed)} (four times the compressed dump; there is no live database to compare)`
      : `the restored copy needs about as much as the live ${target.name} (${formatBytes(liveSize)}), which is kept beside it`;
  const host = new URL(target.adminUrl).hostname;
  if (!['', 'localhost', '127.0.0.1', '[::1]', '::1'].includes(host)) return { needed, estimate, why: `the server ${host} is another machine` };
  let dataDirectory: string;
  try {
    const setting = await client.query<{ dir: string }>("SELECT current_setting('data_directory') AS dir");
    dataDirectory = firstRow(setting.rows).dir;
  } catch (error) {
    return { needed, estimate, why: `reading data_directory: ${describeError(error)}` };
  }
  try {
    return { needed, estimate, free: await freeBytes(dataDirectory), dataDirectory };
  } catch (error) {
    return {
      needed,
      estimate,
      why: `${dataDirectory} is not readable here (${(error as NodeJS.ErrnoException).code ?? describeError(error)}), perhaps the server runs in a container`,
    };
  }
}
