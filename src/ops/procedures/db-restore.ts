/**
 * Runbook: "Restore Database" — `shipshape db restore <backup> [--target <database>] [--jobs N]`.
 *
 * When: data corruption, accidental deletion, disaster recovery. Critical: it replaces the
 * database and takes the application down for the duration, so a second operator approves.
 *
 * Prerequisites: the backup exists, is complete, and verifies (size, SHA-256 and
 * `pg_restore --list` on a fresh read); pg_restore is installed and can read it; the target
 * is reachable and may be renamed by us; there is disk space for the download.
 *
 *   1-2. Enable maintenance mode; #incidents hears of the run (the engine announces it).
 *   3-6. List and choose: the <backup> argument. Download it to STATE_DIR/restore/<run>/
 *        (a local, seekable file is what allows `pg_restore --jobs`); no decompression
 *        pass, the custom format decompresses as it restores.
 *   7.   Create a backup of the current state (safety): a full backup, verified before it
 *        counts, through the same code as `shipshape db backup`. Its id is in the journal.
 *   8.   Terminate active connections — and keep them out: the database is renamed
 *        (parked) while it is replaced, because the application's pools reconnect at once.
 *   9.   pg_restore --clean --if-exists --no-owner --no-privileges --jobs N --exit-on-error.
 *        If it fails, the safety backup is loaded back before the step reports the failure.
 *   10.  Verify critical tables: row counts equal the manifest's; the newest row is there.
 *   11.  Run migrations (if needed): the backup may predate the code.
 *        Then the GDPR erasure ledger is re-applied: accounts erased after the backup was
 *        taken must not come back with it.
 *   12.  Allow connections again (rename back), disable maintenance mode.
 *   Then the local files are removed (they hold personal data).
 *   Verify: the database answers under its own name with the restored data; no migration
 *   is pending; maintenance mode is as it was before the run.
 *
 * Rollback ("restore from pre-restore backup"): the safety backup is loaded the same way,
 * connections are allowed again, maintenance mode goes back to what it was.
 *
 * The runbook keeps no journal of its own; ours lives in STATE_DIR/runs, outside the
 * database being replaced (the engine's journal). `--target <database>` restores into
 * another database on the same server (created if absent), without maintenance mode.
 * On the embedded database the restore loads the dump into a new PGlite folder and swaps it
 * in; `shipshape serve` must be stopped first (checked).
 */
import { rm, rmdir, statfs } from 'node:fs/promises';
import { z } from 'zod';
import { openDatabase } from '../../db/index.ts';
import { Migrator } from '../../db/migrator.ts';
import { quoteIdent, type Pool } from '../../db/pool.ts';
import { setMaintenance, type Maintenance } from '../../domain/app-state.ts';
import { reapplyErasureLedger } from '../../domain/erasure.ts';
import { withLegalStore } from '../../domain/legal-store.ts';
import { describeError, ShipError } from '../../errors.ts';
import { announceAppStateChange } from '../../runtime/app-state-feeds.ts';
import { isBackupId } from '../backups/backup-id.ts';
import { withBackupStore } from '../backups/backup-store.ts';
import { formatBytes } from '../backups/bytes.ts';
import { readManifest } from '../backups/catalog.ts';
import { databaseExists, renameExclusively, withClient } from '../backups/connections.ts';
import { countNamedTables, qualifiedName, readRecentData, rowReader, sameInstant } from '../backups/database-facts.ts';
import { applicationDatabaseName, DATABASE_NAME_PATTERN } from '../backups/database-target.ts';
import { fetchDump, localDumpPath, restoreWorkDir } from '../backups/fetch-backup.ts';
import type { BackupManifest } from '../backups/manifest.ts';
import { pgDumpCheck } from '../backups/pg-tools.ts';
import { ensureEmbeddedIdle } from '../backups/restore-embedded.ts';
import { clearHalfReplaced, halfReplaced, loadBackup, notForEmbedded, putBackSafetyBackup, type LoadOptions } from '../backups/restore-load.ts';
import { pgRestoreArguments, requirePgRestoreFor } from '../backups/restore-postgres.ts';
import { locate, restoreTargetFor, withTargetPool, type RestoreTarget } from '../backups/restore-target.ts';
import { takeVerifiedBackup } from '../backups/take-backup.ts';
import { verifyStoredDump } from '../backups/verify-stored.ts';
import { defineProcedure, type JsonObject, type RunContext } from '../engine/types.ts';

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
          const checks = await withBackupStore(context.config, (store) => verifyStoredDump({ config: context.config, store, facts: manifest, signal: context.signal }));
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
          return { ok: true, detail: `a plain SQL dump: replayed ${target.kind === 'embedded' ? 'into a new embedded database' : 'through the driver in one transaction'}, no pg_restore needed` };
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
      name: 'pg_dump installed for the safety backup',
      run: async (context) => {
        const target = targetOf(context);
        if (target.kind === 'embedded') return { ok: true, detail: "the embedded database's safety backup is dumped by PGlite's own pg_dump, in this process" };
        return pgDumpCheck(context.config, target.adminUrl);
      },
    },
    {
      name: 'the target database can be taken over',
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
          const { rows } = await client.query<{ exists: boolean; allowed: boolean; superuser: boolean }>(
            `SELECT d.datname IS NOT NULL AS exists,
                    r.rolsuper AS superuser,
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
              detail: `the role connecting as DATABASE_URL may not ${row?.exists ? 'rename' : 'create'} database ${target.name}`,
              remedy: 'connect as the database owner with CREATEDB, or as a superuser',
            };
          }
          if (await databaseExists(client, target.parked)) {
            return { ok: false, detail: `a database ${target.parked} already exists (left by an earlier attempt?)`, remedy: 'inspect it and drop it, then run again' };
          }
          return { ok: true, detail: row.exists ? `${target.name} exists; it will be parked while it is replaced` : `${target.name} does not exist yet; it will be created` };
        });
      },
    },
    {
      name: 'disk space under STATE_DIR for the download',
      run: async (context) => {
        const manifest = await manifestOf(context);
        const info = await statfs(context.config.stateDir);
        const free = info.bavail * info.bsize;
        // The backup and, for a rollback, the safety backup: allow twice its size.
        const needed = manifest.dump.bytes * 2;
        const detail = `${formatBytes(free)} free under ${context.config.stateDir}, ${formatBytes(needed)} needed`;
        return free >= needed ? { ok: true, detail } : { ok: false, detail, remedy: 'free disk space, or point STATE_DIR at a larger disk' };
      },
    },
  ],

  steps: [
    {
      id: 'maintenance-on',
      title: 'Enable maintenance mode (#incidents is told the restore started)',
      describe: (context) =>
        isApplication(context)
          ? [`UPDATE app_state SET maintenance_enabled = true, maintenance_message = '${MAINTENANCE_MESSAGE}'   -- every API instance answers 503 within a second`]
          : [`not needed: --target ${context.params.target ?? ''} is not the application's database`],
      async run(context): Promise<JsonObject> {
        if (!isApplication(context)) return { skipped: true };
        const target = targetOf(context);
        // Disaster recovery into a new, empty server: there is no application state to switch yet.
        if (target.kind === 'postgres' && (await locate(target)) === 'missing') {
          context.note(`database ${target.name} does not exist yet: nothing serves from it, so there is no maintenance mode to switch`);
          return { skipped: true };
        }
        const changed = await withTargetPool(target, context.config, context.logger, async (pool) => {
          if (!(await hasAppState(pool))) return undefined;
          return setMaintenance(pool, { enabled: true, message: MAINTENANCE_MESSAGE, setBy: `operator:${context.operator}` });
        });
        if (changed === undefined) {
          context.note('the database has no app_state table (an empty or foreign database): no maintenance mode to switch');
          return { skipped: true };
        }
        await announceAppStateChange(context.config, context.logger);
        context.note(changed.previous.enabled ? 'maintenance mode was already on' : 'maintenance mode on');
        return { skipped: false, previous: { enabled: changed.previous.enabled, message: changed.previous.message } };
      },
      async undo(context, output) {
        if (output.skipped === true) return;
        const previous = z.object({ enabled: z.boolean(), message: z.string().nullable() }).parse(output.previous);
        await restoreMaintenance(context, previous);
      },
      // Cut off before it reported what it replaced: the usual state before a restore is "off".
      async undoInterrupted(context) {
        if (!isApplication(context)) return;
        await restoreMaintenance(context, { enabled: false, message: null });
      },
    },
    {
      id: 'fetch',
      title: 'Download backup (to a local, seekable file)',
      describe: (context) => [`GET ${context.config.backupStorageUrl}/${context.params.backup}/dump → ${localDumpPath(context.config.stateDir, context.runId, context.params.backup)}   -- SHA-256 checked against the manifest`],
      async run(context): Promise<JsonObject> {
        const manifest = await manifestOf(context);
        const file = localDumpPath(context.config.stateDir, context.runId, manifest.id);
        const fetched = await withBackupStore(context.config, (store) =>
          fetchDump(store, manifest, file, { signal: context.signal, onProgress: (bytes) => context.progress({ bytes, totalBytes: manifest.dump.bytes, label: 'download' }) }),
        );
        context.note(fetched.reused ? `${file} was already downloaded and matches` : `downloaded ${fetched.bytes} bytes, SHA-256 matches the manifest`);
        return { file, bytes: fetched.bytes };
      },
      async undo(context, output) {
        await rm(z.string().parse(output.file), { force: true });
        await rmdir(restoreWorkDir(context.config.stateDir, context.runId)).catch(() => undefined);
      },
      async undoInterrupted(context) {
        const file = localDumpPath(context.config.stateDir, context.runId, context.params.backup);
        await rm(file, { force: true });
        await rm(`${file}.partial`, { force: true });
      },
    },
    {
      id: 'safety-backup',
      title: 'Create backup of current state (safety)',
      describe: (context) => {
        const target = targetOf(context);
        return [
          `a full backup of ${target.kind === 'embedded' ? 'the embedded database' : target.name} into ${context.config.backupStorageUrl}, verified before it counts (as \`shipshape db backup\`; purpose pre-restore)`,
          'its id is journaled here: it is what the rollback restores',
        ];
      },
      // No undo: the safety backup is kept after the run, whatever its outcome.
      async run(context): Promise<JsonObject> {
        const target = targetOf(context);
        if (target.kind === 'postgres' && (await locate(target)) === 'missing') {
          context.note(`${target.name} does not exist yet: nothing to keep`);
          return { safetyBackupId: null };
        }
        const manifest = await withBackupStore(context.config, async (store) => {
          const common = {
            config: context.config,
            profile: context.profile,
            store,
            restoreTest: false,
            signal: context.signal,
            onProgress: (bytes: number) => context.progress({ bytes, label: 'safety backup' }),
            context: { purpose: 'pre-restore', runId: context.runId, operator: context.operator },
          };
          if (target.kind === 'postgres') {
            if ((await locate(target)) === 'parked') throw new ShipError('SHIP_ERR_STEP_FAILED', `${target.name} is parked as ${target.parked} by this run already; roll the run back first.`);
            return takeVerifiedBackup({ ...common, source: { kind: 'postgres', url: target.url, databaseName: target.name } });
          }
          const database = await openDatabase(context.config, context.logger, 'shipshape-restore');
          try {
            if (database.embedded === undefined) throw new ShipError('SHIP_ERR_EMBEDDED_DB_LOCKED', `The embedded database was opened by another process (${database.description}); stop it and resume the run.`);
            return await takeVerifiedBackup({ ...common, source: { kind: 'embedded', embedded: database.embedded } });
          } finally {
            await database.close();
          }
        });
        context.note(`safety backup ${manifest.id} taken and verified (${manifest.dump.bytes} bytes): the way back`, { safetyBackupId: manifest.id });
        return { safetyBackupId: manifest.id, bytes: manifest.dump.bytes };
      },
    },
    {
      id: 'stop-connections',
      title: 'Terminate active connections (and keep new ones out)',
      describe: (context) => {
        const target = targetOf(context);
        if (target.kind === 'embedded') return ['check that no other process has the embedded database open (`shipshape serve` must be stopped)'];
        return [
          `-- on ${target.adminUrl.replace(/\/\/[^@]*@/, '//')}, if ${target.name} does not exist: CREATE DATABASE ${quoteIdent(target.name)} TEMPLATE template0;`,
          `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '${target.name}' AND pid <> pg_backend_pid();`,
          `ALTER DATABASE ${quoteIdent(target.name)} RENAME TO ${quoteIdent(target.parked)};   -- retried while clients race back in`,
        ];
      },
      async run(context): Promise<JsonObject> {
        const target = targetOf(context);
        if (target.kind === 'embedded') {
          await ensureEmbeddedIdle(target.stateDir, context.logger);
          return { created: false, disconnected: [] };
        }
        return withClient(target.adminUrl, async (client) => {
          let created = false;
          if (await databaseExists(client, target.parked)) {
            context.note(`${target.name} is already parked as ${target.parked}`);
            return { created: false, disconnected: [] };
          }
          if (!(await databaseExists(client, target.name))) {
            await client.query(`CREATE DATABASE ${quoteIdent(target.name)} TEMPLATE template0`);
            created = true;
            context.note(`created database ${target.name}`);
          }
          const disconnected = await renameExclusively(client, target.name, target.parked, context.signal);
          context.note(`${target.name} parked as ${target.parked}; ${disconnected.length} session(s) disconnected`, {
            disconnected: disconnected.map((backend) => `${backend.pid} ${backend.user ?? '?'} ${backend.application ?? ''}`.trim()),
          });
          return { created, disconnected: disconnected.map((backend) => ({ pid: backend.pid, user: backend.user, application: backend.application, client: backend.client })) };
        });
      },
      async undo(context, output) {
        await unpark(context, output.created === true);
      },
      async undoInterrupted(context) {
        await unpark(context, false);
      },
    },
    {
      id: 'restore',
      title: 'Restore database (pg_restore --clean --if-exists --no-owner --no-privileges --jobs N)',
      describe: (context) => {
        const target = targetOf(context);
        const file = localDumpPath(context.config.stateDir, context.runId, context.params.backup);
        if (target.kind === 'embedded') {
          return [
            `replay ${file} (plain SQL) into a new PGlite folder ${target.stateDir}/db/data.restoring-${context.runId}`,
            `swap it in for ${target.stateDir}/db/data (the live folder is only replaced once the load succeeded)`,
          ];
        }
        return [
          `pg_restore ${pgRestoreArguments(target.parked, context.params.jobs ?? context.config.backups.restoreJobs, file).join(' ')}`,
          '   (plain SQL dumps instead: replayed in one transaction, settings the server does not know left out)',
          isApplication(context) ? "UPDATE app_state SET maintenance_enabled = true   -- the restored row is the backup's" : '',
          'if it fails: the safety backup is loaded back the same way before the step reports the failure',
        ].filter((line) => line !== '');
      },
      async run(context): Promise<JsonObject> {
        const manifest = await manifestOf(context);
        const file = z.string().parse(context.outputs.fetch?.file);
        const options = loadOptions(context);
        let loaded;
        try {
          loaded = await loadBackup(options, manifest, file);
        } catch (error) {
          let putBackText: string;
          try {
            putBackText = await putBack(context);
          } catch (putBackError) {
            throw new ShipError(
              'SHIP_ERR_STEP_FAILED',
              `${describeError(error)} — and loading the safety backup back failed too: ${describeError(putBackError)}. The database is half-replaced; it stays closed to clients and in maintenance.`,
              { cause: error },
            );
          }
          throw new ShipError('SHIP_ERR_STEP_FAILED', `${describeError(error)} — ${putBackText}`, { cause: error });
        }
        if (loaded.leftOutSettings.length > 0) context.note(`left out settings this server does not know: ${loaded.leftOutSettings.join(', ')}`);
        if (isApplication(context)) await keepMaintenanceOn(context);
        context.note(`backup ${manifest.id} loaded: ${loaded.how}`);
        return { how: loaded.how, leftOutSettings: loaded.leftOutSettings };
      },
      async undo(context) {
        context.note(await putBack(context));
      },
      async undoInterrupted(context) {
        context.note(await putBack(context));
      },
    },
    {
      id: 'verify-tables',
      title: 'Verify critical tables (row counts match the manifest; the newest rows are present)',
      describe: (context) => [
        ...context.profile.criticalTables.map((table) => `SELECT count(*) FROM ${qualifiedName(table)};   -- must equal the manifest's count`),
        `SELECT max(${context.profile.recentData.timestampColumn}) FROM ${qualifiedName(context.profile.recentData.table)};   -- must equal the manifest's newest`,
      ],
      async run(context): Promise<JsonObject> {
        const manifest = await manifestOf(context);
        const expected = new Map(manifest.tables.map((table) => [table.name, table.rows]));
        const found = await withTargetPool(targetOf(context), context.config, context.logger, async (pool) => {
          const read = rowReader(pool);
          return { counts: await countNamedTables(read, context.profile.criticalTables), recent: await readRecentData(read, context.profile) };
        });
        const problems = found.counts
          .filter((table) => table.rows !== (expected.get(table.name) ?? null))
          .map((table) => `${table.name}: ${table.rows ?? 'missing'} restored, ${expected.get(table.name) ?? 'absent'} in the backup`);
        if (manifest.recentData !== null && !sameInstant(found.recent?.newestEpoch ?? null, manifest.recentData.newestEpoch)) {
          problems.push(`newest ${manifest.recentData.table}.${manifest.recentData.column} is ${found.recent?.newest ?? 'missing'}, the backup's is ${manifest.recentData.newest ?? 'none'}`);
        }
        if (problems.length > 0) throw new ShipError('SHIP_ERR_STEP_FAILED', `The restored database does not match backup ${manifest.id}: ${problems.join('; ')}.`);
        context.note(`${found.counts.map((table) => `${table.name} ${table.rows}`).join(', ')}; newest ${found.recent?.table ?? ''} row ${found.recent?.newest ?? 'none'}`);
        return { counts: found.counts.map((table) => ({ name: table.name, rows: table.rows })), newest: found.recent?.newest ?? null };
      },
    },
    {
      id: 'migrate',
      title: 'Run migrations (if needed)',
      describe: (context) => [`apply every migration in ${context.profile.migrations.directory} not yet in ${context.profile.migrations.trackingTable}, each in its own transaction`],
      async run(context): Promise<JsonObject> {
        const applied = await withTargetPool(targetOf(context), context.config, context.logger, async (pool) => {
          const outcome = await new Migrator(pool, context.profile.migrations, context.logger).up();
          if (outcome.error !== undefined) throw outcome.error;
          return outcome.results.filter((result) => result.status === 'success').map((result) => `${result.version}_${result.name}`);
        });
        context.note(applied.length === 0 ? 'the backup is at the current schema version: nothing to apply' : `applied ${applied.join(', ')}`);
        return { applied };
      },
      // The restore step's undo loads the whole pre-restore database back, which puts the schema back too.
      async undo() {},
      async undoInterrupted() {},
    },
    {
      id: 'erasure-ledger',
      title: 'Re-apply the GDPR erasure ledger (accounts erased after the backup stay erased)',
      describe: () => [
        'merge the ledger mirror in LEGAL_STORAGE_URL into erasure_ledger, then erase again every account it lists that the restored data contains',
      ],
      async run(context): Promise<JsonObject> {
        const result = await withLegalStore(context.config, (legalStore) =>
          withTargetPool(targetOf(context), context.config, context.logger, async (pool) => {
            const reapplied = await reapplyErasureLedger(pool, { usersTable: context.profile.users, legalStore, operator: context.operator });
            return { ...reapplied, countsAfter: await criticalCounts(pool, context) };
          }),
        );
        context.note(`erased again ${result.erased} account(s) the backup still held (ledger: ${result.ledgerRecords} record(s), ${result.mergedFromMirror} merged from its mirror)`);
        return result;
      },
      // The restore step's undo loads the whole pre-restore database back, which includes these rows.
      async undo() {},
      async undoInterrupted() {},
    },
    {
      id: 'allow-connections',
      title: 'Allow connections again',
      describe: (context) => {
        const target = targetOf(context);
        if (target.kind === 'embedded') return ['nothing to do: the embedded database opens with the next process that uses it'];
        return [`ALTER DATABASE ${quoteIdent(target.parked)} RENAME TO ${quoteIdent(target.name)};`];
      },
      async run(context): Promise<JsonObject> {
        await unpark(context, false);
        return { reopened: true };
      },
      async undo(context) {
        await park(context);
      },
      async undoInterrupted(context) {
        await park(context);
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
        const before = z.object({ enabled: z.boolean(), message: z.string().nullable() }).parse(context.outputs['maintenance-on']?.previous ?? { enabled: false, message: null });
        await restoreMaintenance(context, before);
        context.note(before.enabled ? 'maintenance mode stays on: it was on before the restore' : 'maintenance mode off');
        return { skipped: false, enabled: before.enabled };
      },
      async undo(context, output) {
        if (output.skipped === true) return;
        await restoreMaintenance(context, { enabled: true, message: MAINTENANCE_MESSAGE });
      },
      async undoInterrupted(context) {
        if (!isApplication(context)) return;
        await restoreMaintenance(context, { enabled: true, message: MAINTENANCE_MESSAGE });
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
        if (target.kind === 'postgres' && (await locate(target)) !== 'open') return { ok: false, detail: `${target.name} is not open under its own name` };
        const expected = z.record(z.string(), z.number().nullable()).parse(context.outputs['erasure-ledger']?.countsAfter ?? {});
        const counts = await withTargetPool(target, context.config, context.logger, (pool) => criticalCounts(pool, context));
        const differ = Object.entries(counts).filter(([name, rows]) => expected[name] !== rows);
        const detail = Object.entries(counts).map(([name, rows]) => `${name} ${rows ?? 'missing'}`).join(', ');
        return differ.length === 0 ? { ok: true, detail } : { ok: false, detail: `${detail} — expected ${JSON.stringify(expected)}` };
      },
    },
    {
      name: 'no migration is pending',
      run: async (context) => {
        const pending = await withTargetPool(targetOf(context), context.config, context.logger, (pool) => new Migrator(pool, context.profile.migrations, context.logger).pending());
        return pending.length === 0 ? { ok: true, detail: 'schema is current' } : { ok: false, detail: `pending: ${pending.map((file) => file.fileName).join(', ')}` };
      },
    },
    {
      name: 'maintenance mode is as before the restore',
      run: async (context) => {
        if (!isApplication(context)) return { ok: true, detail: 'not the application database: maintenance mode untouched' };
        const before = z.object({ enabled: z.boolean() }).safeParse(context.outputs['maintenance-on']?.previous);
        const wanted = before.success ? before.data.enabled : false;
        const now = await withTargetPool(targetOf(context), context.config, context.logger, async (pool) => {
          if (!(await hasAppState(pool))) return false;
          const { rows } = await pool.query<{ enabled: boolean }>('SELECT maintenance_enabled AS enabled FROM app_state');
          return rows[0]?.enabled ?? false;
        });
        return now === wanted ? { ok: true, detail: `maintenance mode ${now ? 'on' : 'off'}` } : { ok: false, detail: `maintenance mode is ${now ? 'on' : 'off'}, it should be ${wanted ? 'on' : 'off'}` };
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

/** Loads the safety backup back; a target this run created (no safety backup) is dropped by unparking's undo instead. */
async function putBack(context: Context): Promise<string> {
  const safety = context.outputs['safety-backup']?.safetyBackupId;
  if (typeof safety !== 'string') {
    // The target did not exist before this run: undoing the parking drops it, half-loaded or not.
    await clearHalfReplaced(context.config.stateDir, context.runId);
    return 'there was no database before this run, so there is nothing to put back';
  }
  const sentence = await withBackupStore(context.config, (store) => putBackSafetyBackup(loadOptions(context), store, safety));
  return sentence;
}

/** The restored app_state row says whatever it said at backup time: keep the service in maintenance until the end. */
async function keepMaintenanceOn(context: Context): Promise<void> {
  await withTargetPool(targetOf(context), context.config, context.logger, async (pool) => {
    if (await hasAppState(pool)) await setMaintenance(pool, { enabled: true, message: MAINTENANCE_MESSAGE, setBy: `operator:${context.operator}` });
  });
}

/** Sets maintenance mode wherever the database is now; a database without app_state (or none at all) has none to set. */
async function restoreMaintenance(context: Context, state: Pick<Maintenance, 'enabled' | 'message'>): Promise<void> {
  const target = targetOf(context);
  if (target.kind === 'postgres' && (await locate(target)) === 'missing') return;
  await withTargetPool(target, context.config, context.logger, async (pool) => {
    if (await hasAppState(pool)) await setMaintenance(pool, { enabled: state.enabled, message: state.message, setBy: `operator:${context.operator}` });
  });
  await announceAppStateChange(context.config, context.logger);
}

async function hasAppState(pool: Pool): Promise<boolean> {
  const { rows } = await pool.query<{ found: boolean }>("SELECT to_regclass('app_state') IS NOT NULL AS found");
  return rows[0]?.found === true;
}

/** Renames the parked database back (dropping it instead when this run created it). Refuses over a half-replaced database. */
async function unpark(context: Context, dropInstead: boolean): Promise<void> {
  const target = targetOf(context);
  const half = await halfReplaced(context.config.stateDir, context.runId);
  if (half !== undefined) {
    throw new ShipError(
      'SHIP_ERR_ROLLBACK_FAILED',
      `The database is half-replaced (loading backup ${half.backupId} stopped part-way at ${half.since}), so it stays ${target.kind === 'postgres' ? `parked as ${target.parked}` : 'closed'} and in maintenance. ` +
        `Run \`shipshape runs rollback ${context.runId}\` to load the safety backup again, or restore a backup by hand.`,
    );
  }
  if (target.kind === 'embedded') return;
  await withClient(target.adminUrl, async (client) => {
    if (!(await databaseExists(client, target.parked))) return;
    if (dropInstead) {
      await client.query(`DROP DATABASE ${quoteIdent(target.parked)} WITH (FORCE)`);
      context.note(`dropped ${target.parked}: this run had created ${target.name}`);
      return;
    }
    if (await databaseExists(client, target.name)) {
      throw new ShipError('SHIP_ERR_ROLLBACK_FAILED', `Both ${target.name} and ${target.parked} exist; inspect both, drop the wrong one, then run \`shipshape runs rollback ${context.runId}\` again.`);
    }
    await renameExclusively(client, target.parked, target.name);
    context.note(`${target.parked} renamed back to ${target.name}: connections allowed again`);
  });
}

async function park(context: Context): Promise<void> {
  const target = targetOf(context);
  if (target.kind === 'embedded') return;
  await withClient(target.adminUrl, async (client) => {
    if (!(await databaseExists(client, target.name))) return;
    const disconnected = await renameExclusively(client, target.name, target.parked);
    context.note(`${target.name} parked again as ${target.parked}; ${disconnected.length} session(s) disconnected`);
  });
}

async function criticalCounts(pool: Pool, context: Context): Promise<Record<string, number | null>> {
  const counts = await countNamedTables(rowReader(pool), context.profile.criticalTables);
  return Object.fromEntries(counts.map((table) => [table.name, table.rows]));
}
