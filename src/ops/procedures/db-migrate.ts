/**
 * Runbook: "Run Database Migration" — `shipshape db migrate up`.
 *
 * When: schema changes that ship with a new release. Medium risk: it changes the schema
 * under a running application, so it asks for confirmation.
 *
 * Prerequisite: a verified backup of this database younger than MIGRATE_BACKUP_MAX_AGE
 * (default 1h) is in backup storage — or `--backup` takes one as the first step.
 *
 *   1. Backup database first: the backup that is the way back (taken now with --backup).
 *   2. Review migration: the exact SQL of every pending migration.
 *   3. Test migration in transaction: all of it applied in one transaction, the catalog
 *      compared before and after, rolled back (the runner's `plan`).
 *   4. Apply migration: each pending migration in its own transaction, recorded in the
 *      tracking table (the runner's `up`).
 *   Verify: the tracking table has every reviewed version, and every table, column and
 *   index the test transaction saw the migrations create (or drop) is so now.
 *
 * Rollback: the down migrations of the versions this run applied, newest first. Where a
 * version has no `.down.sql`, nothing is reverted and the run stops needing a human (exit
 * 4), naming the pre-migration backup to restore. `shipshape db migrate down` stays the
 * manual path; `status` and `plan` inspect without changing anything.
 */
import { z } from 'zod';
import type { Config } from '../../config/index.ts';
import { formatDurationMs } from '../../config/duration.ts';
import type { Database } from '../../db/index.ts';
import { missingSchemaChanges, type MigrationFile, type Migrator, type SchemaChange } from '../../db/migrator.ts';
import { describeError, isShipError, ShipError } from '../../errors.ts';
import { migratorFor } from '../../db/migrator.ts';
import { withBackupStore } from '../backups/backup-store.ts';
import { listBackups, type BackupEntry } from '../backups/catalog.ts';
import { applicationDatabaseName, databaseLockResource } from '../backups/database-target.ts';
import { defineProcedure, outputOf, stepFor, type RunContext } from '../engine/types.ts';
import { takeBackupInRun } from './db-backup.ts';

const params = z.object({
  /** Take a fresh, verified backup as step 1 instead of requiring a recent one. */
  backup: z.boolean().default(false),
  /** Apply pending migrations only up to and including this version. */
  to: z.coerce.number().int().positive().optional(),
});
type Params = z.output<typeof params>;
type Context = RunContext<Params>;

/** A pending migration as reviewed: what apply checks it is still applying. */
interface Reviewed {
  readonly version: number;
  readonly fileName: string;
  readonly checksum: string;
  readonly transactional: boolean;
  readonly hasDown: boolean;
}

const reviewedSchema = z.array(z.object({ version: z.number(), fileName: z.string(), checksum: z.string(), transactional: z.boolean(), hasDown: z.boolean() }));
const changesSchema = z.array(z.object({ change: z.enum(['created', 'dropped']), kind: z.enum(['table', 'column', 'index']), name: z.string() }));

const step = stepFor<Params>();

const backupStep = step({
  id: 'backup',
  output: z.object({
    /** The way back: the backup taken by this run, or the newest verified one; null when nothing was pending. */
    backupId: z.string().nullable(),
    createdAt: z.string().optional(),
    taken: z.boolean().optional(),
  }),
  title: 'Backup database first',
  describe: ({ params: p, config }) =>
    p.backup
      ? [`a full backup of ${applicationDatabaseName(config)} into ${config.backupStorageUrl}, verified before it counts (as \`shipshape db backup\`)`]
      : [`no new backup: the newest verified backup of ${applicationDatabaseName(config)} in ${config.backupStorageUrl} (checked above) is the way back`],
  // No undo: the backup is the way back from this very run, so a rollback keeps it.
  async run(context) {
    if ((await pendingFiles(context)).length === 0) {
      context.note('nothing to migrate: no backup needed');
      return { backupId: null };
    }
    if (context.params.backup) {
      const taken = await takeBackupInRun(context, 'pre-migration');
      context.note(`backup ${taken.id} taken and verified`);
      return { backupId: taken.id, createdAt: taken.createdAt, taken: true };
    }
    const newest = await newestVerifiedBackup(context.config);
    if (newest === undefined) {
      throw new ShipError(
        'SHIP_ERR_BACKUP_NOT_VERIFIED',
        'The verified backup found by the prerequisite is gone from backup storage. Nothing was changed; run with --backup to take a new one.',
      );
    }
    context.note(`the way back is backup ${newest.id} (taken ${newest.createdAt.toISOString()})`);
    return { backupId: newest.id, createdAt: newest.createdAt.toISOString(), taken: false };
  },
});

const reviewStep = step({
  id: 'review',
  output: z.object({ pending: reviewedSchema }),
  title: 'Review migration',
  describe: (context) => {
    const seen = pendingSeen.get(context.params);
    if (seen !== undefined) {
      if (seen.length === 0) return [`no pending migrations${uptoText(context.params)}`];
      return seen.flatMap((file, index) => [
        ...(index === 0 ? [] : ['']),
        `-- ${file.fileName}${file.transactional ? '' : ' (runs outside a transaction)'}`,
        file.sql.trim(),
      ]);
    }
    const reviewed = reviewedOf(context);
    if (reviewed !== undefined) return reviewed.map((file) => `-- ${file.fileName}`);
    return [
      `the SQL of every migration in ${context.profile.migrations.directory} not yet in ${context.profile.migrations.trackingTable} (\`shipshape db migrate plan\` prints it)`,
    ];
  },
  async run(context) {
    const pending = await pendingFiles(context);
    const withoutDown = pending.filter((file) => file.downSql === undefined);
    context.note(
      pending.length === 0
        ? `nothing pending${uptoText(context.params)}`
        : `${pending.length} pending: ${pending.map((file) => file.fileName).join(', ')}` +
            (withoutDown.length === 0
              ? ''
              : `; without a down migration (rolled back only by restoring the backup): ${withoutDown.map((file) => file.fileName).join(', ')}`),
    );
    return {
      pending: pending.map((file) => ({
        version: file.version,
        fileName: file.fileName,
        checksum: file.checksum,
        transactional: file.transactional,
        hasDown: file.downSql !== undefined,
      })),
    };
  },
});

const testInTransactionStep = step({
  id: 'test-in-transaction',
  output: z.object({ changes: changesSchema, untested: z.array(z.string()) }),
  title: 'Test migration in transaction',
  describe: (context) => [
    'BEGIN;',
    ...namesToReview(context).map((name) => `\\i ${name}`),
    '-- compare the tables, columns and indexes in the catalog before and after',
    'ROLLBACK;',
  ],
  async run(context) {
    const reviewed = requireReviewed(context);
    if (reviewed.length === 0) return { changes: [], untested: [] };
    const plan = await withMigrator(context, (migrator) => migrator.plan({ noWait: true, to: maxVersion(reviewed) }));
    const tried = plan.pending.map((file) => file.fileName);
    if (tried.join() !== reviewed.map((file) => file.fileName).join()) {
      throw new ShipError(
        'SHIP_ERR_MIGRATION_DRIFT',
        `The pending migrations changed since they were reviewed (${tried.join(', ')} now). Nothing was changed; run \`shipshape db migrate up\` again to review them.`,
      );
    }
    context.note(`tried and rolled back: ${summarizeChanges(plan.changes)}`);
    if (plan.untested.length > 0) context.note(`not tried (they run outside a transaction): ${plan.untested.join(', ')}`);
    return { changes: plan.changes.map((change) => ({ change: change.change, kind: change.kind, name: change.name })), untested: plan.untested };
  },
});

const applyStep = step({
  id: 'apply',
  output: z.object({
    applied: z.array(z.number()),
    /** Set when the apply failed and what it applied could not be reverted here (verification and undo report it). */
    failed: z.object({ message: z.string() }).nullable(),
  }),
  title: 'Apply migration',
  describe: (context) => [
    `each in its own transaction, recorded in ${context.profile.migrations.trackingTable}, under the migration advisory lock:`,
    ...namesToReview(context).map((name) => `  ${name}`),
  ],
  async run(context) {
    const reviewed = requireReviewed(context);
    if (reviewed.length === 0) return { applied: [], failed: null };
    // On a resume after a crash mid-apply, an earlier attempt may have applied some already.
    const earlier = await appliedAmong(context, reviewed);
    if (earlier.length > 0)
      context.note(
        `applied by the interrupted attempt: ${reviewed
          .filter((file) => earlier.includes(file.version))
          .map((file) => file.fileName)
          .join(', ')}`,
      );
    const remaining = reviewed.filter((file) => !earlier.includes(file.version));
    const now = await pendingFiles(context);
    if (now.map((file) => `${file.fileName}:${file.checksum}`).join() !== remaining.map((file) => `${file.fileName}:${file.checksum}`).join()) {
      throw new ShipError(
        'SHIP_ERR_MIGRATION_DRIFT',
        'The pending migration files changed since they were reviewed and tested. Nothing was applied; run `shipshape db migrate up` again to review them.',
      );
    }
    const outcome = await withMigrator(context, (migrator) => migrator.up({ noWait: true, to: maxVersion(reviewed) }));
    const applied = [...earlier, ...outcome.results.filter((result) => result.status === 'success').map((result) => result.version)];
    if (outcome.error === undefined) {
      context.note(`applied ${applied.length} migration(s)`);
      return { applied, failed: null };
    }
    if (applied.length === 0) throw outcome.error;
    // A failed step must leave nothing half-done: put back what this run applied before the failure.
    try {
      await revertThisRun(context, applied);
    } catch (revertError) {
      // Cannot put it back here: return what is applied, so verification fails and the
      // rollback's undo reports it (exit 4) with the backup to restore.
      context.note(`${outcome.error.message} Reverting the ${applied.length} migration(s) applied before it failed too: ${describeError(revertError)}`);
      const failed = outcome.results.find((result) => result.status === 'error');
      return {
        applied,
        failed: {
          message: failed
            ? `${String(failed.version).padStart(4, '0')}_${failed.name}.sql failed to apply: ${failed.error ?? 'unknown error'}`
            : outcome.error.message,
        },
      };
    }
    throw new ShipError(
      'SHIP_ERR_MIGRATION_FAILED',
      `${outcome.error.message} The ${applied.length} migration(s) this run applied before it were reverted with their down migrations.`,
    );
  },
  async undo(context, output) {
    await revertThisRun(context, output.applied);
  },
  // Interrupted mid-apply: the versions this run reviewed that are applied now are the ones it applied.
  async undoInterrupted(context) {
    const reviewed = reviewedOf(context) ?? [];
    await revertThisRun(
      context,
      reviewed.map((file) => file.version),
    );
  },
});

export const dbMigrate = defineProcedure({
  id: 'db.migrate',
  command: 'db migrate up',
  title: 'Run database migration',
  runbookSection: 'Run Database Migration',
  whenToUse: 'Schema changes, new features: apply the pending migrations of this release.',
  risk: 'medium',
  expectedDuration: '5-30 minutes',
  issueType: 'database',
  params,
  locks: (_params, config) => [databaseLockResource(config)],
  prerequisites: [
    {
      name: 'migration history matches the migration files',
      run: async (context) => {
        const pending = await pendingFiles(context);
        const { directory, trackingTable } = context.profile.migrations;
        if (pending.length === 0) return { ok: true, detail: `nothing pending${uptoText(context.params)}: ${trackingTable} is up to date with ${directory}` };
        return { ok: true, detail: `${pending.length} pending${uptoText(context.params)}: ${pending.map((file) => file.fileName).join(', ')}` };
      },
    },
    {
      name: `a verified backup no older than MIGRATE_BACKUP_MAX_AGE`,
      run: async (context) => {
        const maxAge = context.config.migrateBackupMaxAgeMs;
        if (context.params.backup) return { ok: true, detail: '--backup: a fresh backup is taken and verified as step 1' };
        if ((await pendingFiles(context)).length === 0) return { ok: true, detail: 'not needed: there is nothing to migrate' };
        const newest = await newestVerifiedBackup(context.config);
        const remedy = 'take one first with `shipshape db backup`, or run this with --backup';
        if (newest === undefined) return { ok: false, detail: `no verified backup of ${applicationDatabaseName(context.config)} in backup storage`, remedy };
        const age = Date.now() - newest.createdAt.getTime();
        const detail = `newest verified backup ${newest.id} is ${formatDurationMs(roundToSeconds(age))} old (limit ${formatDurationMs(maxAge)})`;
        return age <= maxAge ? { ok: true, detail } : { ok: false, detail, remedy };
      },
    },
  ],
  steps: [backupStep, reviewStep, testInTransactionStep, applyStep],
  verification: [
    {
      name: 'the tracking table records every reviewed migration',
      run: async (context) => {
        const reviewed = reviewedOf(context) ?? [];
        const table = context.profile.migrations.trackingTable;
        if (reviewed.length === 0) return { ok: true, detail: 'nothing was pending' };
        const applied = new Set(
          (await withMigrator(context, (migrator) => migrator.status())).filter((row) => row.state === 'applied').map((row) => row.version),
        );
        const missing = reviewed.filter((file) => !applied.has(file.version));
        if (missing.length === 0) return { ok: true, detail: `${table} has ${reviewed.map((file) => file.fileName).join(', ')}` };
        const failed = outputOf(context, applyStep)?.failed;
        const why = failed ? `: ${failed.message}` : '';
        return { ok: false, detail: `${table} lacks ${missing.map((file) => file.fileName).join(', ')}${why}` };
      },
    },
    {
      name: 'the objects the migrations create exist',
      run: async (context) => {
        const tried = outputOf(context, testInTransactionStep);
        const changes: SchemaChange[] = tried?.changes ?? [];
        const untested = tried?.untested ?? [];
        const note = untested.length > 0 ? ` (not checked: ${untested.join(', ')} ran outside a transaction, so its changes were never tried)` : '';
        if (changes.length === 0) return { ok: true, detail: `no table, column or index changes were planned${note}` };
        const database = await context.database();
        const missing = await missingSchemaChanges(database.pool, changes);
        if (missing.length === 0) return { ok: true, detail: `as planned: ${summarizeChanges(changes)}${note}` };
        const shown = missing.slice(0, LIST_LIMIT).map((change) => `${changeText(change)} is ${change.change === 'created' ? 'missing' : 'still there'}`);
        return { ok: false, detail: `not as planned: ${shown.join(', ')}${missing.length > LIST_LIMIT ? ` (and ${missing.length - LIST_LIMIT} more)` : ''}` };
      },
    },
  ],
});

/**
 * describe() is synchronous and may not query, yet "Review migration" should show the SQL:
 * the prerequisite that reads the pending files leaves them here, keyed by the run's params.
 */
const pendingSeen = new WeakMap<object, MigrationFile[]>();

async function pendingFiles(context: Context): Promise<MigrationFile[]> {
  const pending = (await withMigrator(context, (migrator) => migrator.pending())).filter(
    (file) => context.params.to === undefined || file.version <= context.params.to,
  );
  pendingSeen.set(context.params, pending);
  return pending;
}

/** Opens the runner on the app profile's migrations; its lock error gets this command's advice. */
async function withMigrator<T>(context: Context, fn: (migrator: Migrator) => Promise<T>): Promise<T> {
  const database: Database = await context.database();
  try {
    return await fn(migratorFor(database, context.logger, context.profile));
  } catch (error) {
    if (isShipError(error) && error.code === 'SHIP_ERR_MIGRATION_LOCKED') {
      throw new ShipError(
        'SHIP_ERR_MIGRATION_LOCKED',
        `${error.message.split('. ')[0] ?? error.message}. Wait for it to finish (a \`shipshape serve --migrate\` starting up, or another migration), then run this again.`,
        { cause: error },
      );
    }
    throw error;
  }
}

/**
 * Reverts the given versions (this run's), newest first, with their down migrations —
 * only if every one has a down file and nothing newer was applied on top of them.
 */
async function revertThisRun(context: Context, versions: readonly number[]): Promise<void> {
  const ours = new Set(versions);
  const status = await withMigrator(context, (migrator) => migrator.status());
  const applied = status.filter((row) => row.state === 'applied');
  const stillOurs = applied.filter((row) => ours.has(row.version));
  if (stillOurs.length === 0) return;
  const lowest = Math.min(...stillOurs.map((row) => row.version));
  const fileName = (row: { version: number; name: string }) => `${String(row.version).padStart(4, '0')}_${row.name}.sql`;
  const onTop = applied.filter((row) => row.version > lowest && !ours.has(row.version));
  if (onTop.length > 0) {
    throw new ShipError(
      'SHIP_ERR_MIGRATION_DRIFT',
      `${onTop.map(fileName).join(', ')} was applied after this run's migrations, so reverting them would revert it too. Nothing was reverted. ` +
        `Revert it first with \`shipshape db migrate down\`, then run \`shipshape runs rollback ${context.runId}\`; or ${restoreAdvice(context)}`,
    );
  }
  const withoutDown = stillOurs.filter((row) => !row.hasDown);
  if (withoutDown.length > 0) {
    throw new ShipError(
      'SHIP_ERR_MIGRATION_NO_DOWN',
      `${withoutDown.map(fileName).join(', ')} has no .down.sql, so this run's migrations (${stillOurs.map(fileName).join(', ')}) cannot be reverted and stay applied. Nothing was reverted. ` +
        `To go back, ${restoreAdvice(context)}`,
      { details: { backupId: backupIdOf(context) ?? null } },
    );
  }
  const outcome = await withMigrator(context, (migrator) => migrator.down({ noWait: true, to: lowest - 1 }));
  if (outcome.error) {
    const reverted = outcome.results.filter((result) => result.status === 'success').length;
    throw new ShipError(
      'SHIP_ERR_MIGRATION_FAILED',
      `Reverting this run's migrations failed after ${reverted} of ${stillOurs.length}: ${outcome.error.message.split('. Fix the file')[0] ?? outcome.error.message}. ` +
        `Fix the down file and run \`shipshape runs rollback ${context.runId}\`, or ${restoreAdvice(context)}`,
      { cause: outcome.error },
    );
  }
  context.note(`reverted ${stillOurs.map(fileName).join(', ')} with their down migrations`);
}

/** Which of the reviewed versions the tracking table records as applied now. */
async function appliedAmong(context: Context, reviewed: readonly Reviewed[]): Promise<number[]> {
  const versions = new Set(reviewed.map((file) => file.version));
  const status = await withMigrator(context, (migrator) => migrator.status());
  return status.filter((row) => row.state === 'applied' && versions.has(row.version)).map((row) => row.version);
}

function restoreAdvice(context: Context): string {
  const id = backupIdOf(context);
  return id === undefined
    ? 'restore the newest backup from before this run (`shipshape db backups` lists them): `shipshape db restore <id>`.'
    : `restore the backup taken before the migration: \`shipshape db restore ${id}\`.`;
}

function backupIdOf(context: Context): string | undefined {
  return outputOf(context, backupStep)?.backupId ?? undefined;
}

/** The newest good backup of this application database, or undefined. */
async function newestVerifiedBackup(config: Config): Promise<BackupEntry | undefined> {
  const name = applicationDatabaseName(config);
  return withBackupStore(config, async (store) => (await listBackups(store)).find((entry) => entry.state === 'good' && entry.manifest?.database.name === name));
}

function reviewedOf(context: Context): Reviewed[] | undefined {
  return outputOf(context, reviewStep)?.pending;
}

function requireReviewed(context: Context): Reviewed[] {
  const reviewed = reviewedOf(context);
  if (reviewed === undefined)
    throw new ShipError('SHIP_ERR_INTERNAL', 'The review step left no list of pending migrations. Nothing was changed; run `shipshape db migrate up` again.');
  return reviewed;
}

/** File names for describe(): reviewed in this run if it got that far, else what the prerequisite saw. */
function namesToReview(context: Context): string[] {
  const names = reviewedOf(context)?.map((file) => file.fileName) ?? pendingSeen.get(context.params)?.map((file) => file.fileName);
  if (names === undefined) return [`<each pending migration in ${context.profile.migrations.directory}>`];
  return names.length === 0 ? ['-- (no pending migrations)'] : names;
}

function maxVersion(files: readonly { version: number }[]): number {
  return Math.max(...files.map((file) => file.version));
}

function changeText(change: SchemaChange): string {
  return `${change.change === 'created' ? '+' : '-'} ${change.kind} ${change.name}`;
}

const LIST_LIMIT = 8;

/**
 * `+ 2 tables: public.a, public.b; + 1 column: public.c.d text; + 3 indexes: …`. Columns of
 * tables created or dropped in the same change are left out: they come with their table.
 */
function summarizeChanges(changes: readonly SchemaChange[]): string {
  if (changes.length === 0) return 'no table, column or index changes';
  const wholeTables = new Set(changes.filter((change) => change.kind === 'table').map((change) => `${change.change} ${change.name}`));
  const tableOfColumn = (name: string) => (name.split(' ')[0] ?? name).split('.').slice(0, 2).join('.');
  const parts: string[] = [];
  for (const change of ['created', 'dropped'] as const) {
    for (const kind of ['table', 'column', 'index'] as const) {
      const names = changes
        .filter((c) => c.change === change && c.kind === kind && !(kind === 'column' && wholeTables.has(`${change} ${tableOfColumn(c.name)}`)))
        .map((c) => c.name);
      if (names.length === 0) continue;
      const noun = names.length === 1 ? kind : kind === 'index' ? 'indexes' : `${kind}s`;
      const more = names.length > LIST_LIMIT ? ` (and ${names.length - LIST_LIMIT} more)` : '';
      parts.push(`${change === 'created' ? '+' : '-'} ${names.length} ${noun}: ${names.slice(0, LIST_LIMIT).join(', ')}${more}`);
    }
  }
  return parts.join('; ');
}

function uptoText(p: Params): string {
  return p.to === undefined ? '' : ` up to ${String(p.to).padStart(4, '0')}`;
}

function roundToSeconds(ms: number): number {
  return Math.max(0, Math.round(ms / 1_000) * 1_000);
}
