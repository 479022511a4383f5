/**
 * The migration runner: numbered SQL files applied in order, each in its own
 * transaction, recorded with a checksum, under an advisory lock.
 *
 * It refuses to run on a history it does not recognise (an applied file that changed or
 * disappeared, a new file numbered below an applied one) and names the file, because
 * guessing is how schemas drift apart between environments. Migration outcomes are
 * returned per migration rather than thrown, so callers can report partial progress.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { shipshapeProfile, type AppProfile } from '../app-profile.ts';
import { ShipError, describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Database } from './index.ts';
import { quoteIdent, quoteQualified, type Pool, type PoolClient, type Queryable } from './pool.ts';

/** Put this on the first line of a migration that cannot run in a transaction (CREATE INDEX CONCURRENTLY). */
const NO_TRANSACTION_MARKER = '-- shipshape:no-transaction';
const FILE_PATTERN = /^(\d{4,})_([a-z0-9_]+?)(\.down)?\.sql$/;
/** Advisory lock key shared by every Shipshape migrator ("SHIPMIGR" folded into 31 bits). */
const MIGRATION_LOCK_KEY = 0x5348_4d47;

export interface MigrationFile {
  readonly version: number;
  readonly name: string;
  /** `0002_add_devices.sql` */
  readonly fileName: string;
  readonly sql: string;
  readonly checksum: string;
  readonly downSql: string | undefined;
  readonly transactional: boolean;
}

export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
  readonly appliedAt: Date;
  readonly durationMs: number;
}

export interface MigrationStatusRow {
  readonly version: number;
  readonly name: string;
  readonly state: 'applied' | 'pending';
  readonly appliedAt: Date | undefined;
  readonly hasDown: boolean;
}

export interface MigrationResult {
  readonly version: number;
  readonly name: string;
  readonly direction: 'up' | 'down';
  readonly status: 'success' | 'error' | 'not-executed';
  readonly durationMs?: number;
  readonly error?: string;
}

export interface MigrationRunOutcome {
  readonly results: MigrationResult[];
  /** Set when a migration failed; earlier migrations in `results` stay applied. */
  readonly error: ShipError | undefined;
}

export interface SchemaChange {
  readonly change: 'created' | 'dropped';
  readonly kind: 'table' | 'column' | 'index';
  readonly name: string;
}

export interface MigrationPlan {
  readonly pending: ReadonlyArray<Pick<MigrationFile, 'version' | 'name' | 'fileName' | 'sql' | 'transactional'>>;
  /** What the pending migrations changed when applied in a transaction that was then rolled back. */
  readonly changes: SchemaChange[];
  /** Migrations that opt out of transactions and so could not be tried; shown, not run. */
  readonly untested: string[];
}

export interface MigratorOptions {
  readonly directory: string;
  /** Schema-qualified tracking table, e.g. `shipshape.schema_migrations`. */
  readonly trackingTable: string;
}

export interface LockOptions {
  /** Fail at once with SHIP_ERR_MIGRATION_LOCKED instead of waiting for another runner. */
  readonly noWait?: boolean;
}

export class Migrator {
  private readonly table: string;

  private readonly pool: Pool;
  private readonly options: MigratorOptions;
  private readonly logger: Logger;

  constructor(pool: Pool, options: MigratorOptions, logger: Logger) {
    this.pool = pool;
    this.options = options;
    this.logger = logger;
    this.table = quoteQualified(options.trackingTable);
  }

  /** Every known migration with its state; throws on drift. */
  async status(): Promise<MigrationStatusRow[]> {
    const files = await readMigrationFiles(this.options.directory);
    const applied = await this.readApplied(this.pool);
    checkHistory(files, applied);
    const byVersion = new Map(applied.map((row) => [row.version, row]));
    return files.map((file) => ({
      version: file.version,
      name: file.name,
      state: byVersion.has(file.version) ? 'applied' : 'pending',
      appliedAt: byVersion.get(file.version)?.appliedAt,
      hasDown: file.downSql !== undefined,
    }));
  }

  async pending(): Promise<MigrationFile[]> {
    const files = await readMigrationFiles(this.options.directory);
    const applied = await this.readApplied(this.pool);
    checkHistory(files, applied);
    const done = new Set(applied.map((row) => row.version));
    return files.filter((file) => !done.has(file.version));
  }

  /** Applies pending migrations (up to and including `to`), each in its own transaction. */
  async up(options: LockOptions & { to?: number } = {}): Promise<MigrationRunOutcome> {
    return this.withLock(options, async (client) => {
      await this.ensureTrackingTable(client);
      const files = await readMigrationFiles(this.options.directory);
      const applied = await this.readApplied(client);
      checkHistory(files, applied);
      const done = new Set(applied.map((row) => row.version));
      const todo = files.filter((file) => !done.has(file.version) && (options.to === undefined || file.version <= options.to));
      return this.runEach(todo, 'up', (file) => this.apply(client, file));
    });
  }

  /** Reverts applied migrations newer than `to` (default: only the newest), newest first. */
  async down(options: LockOptions & { to?: number } = {}): Promise<MigrationRunOutcome> {
    return this.withLock(options, async (client) => {
      await this.ensureTrackingTable(client);
      const files = await readMigrationFiles(this.options.directory);
      const applied = await this.readApplied(client);
      checkHistory(files, applied);
      const newestFirst = [...applied].sort((a, b) => b.version - a.version);
      const targets = options.to === undefined ? newestFirst.slice(0, 1) : newestFirst.filter((row) => row.version > (options.to ?? 0));
      const byVersion = new Map(files.map((file) => [file.version, file]));
      const todo = targets.map((row) => byVersion.get(row.version)).filter((file): file is MigrationFile => file !== undefined);
      const withoutDown = todo.filter((file) => file.downSql === undefined);
      if (withoutDown.length > 0) {
        throw new ShipError(
          'SHIP_ERR_MIGRATION_NO_DOWN',
          `Cannot revert ${withoutDown.map((file) => file.fileName).join(', ')}: no .down.sql file. ` +
            'Nothing was reverted. Write the down migration, or restore the backup taken before the migration.',
        );
      }
      return this.runEach(todo, 'down', (file) => this.revert(client, file));
    });
  }

  /**
   * The runbook's "test migration in transaction": applies every pending migration in one
   * transaction, records what changed in the catalog, and rolls everything back. With
   * `to`, only the pending migrations up to and including that version.
   */
  async plan(options: LockOptions & { to?: number } = {}): Promise<MigrationPlan> {
    return this.withLock(options, async (client) => {
      const pending = (await this.pending()).filter((file) => options.to === undefined || file.version <= options.to);
      const testable = pending.filter((file) => file.transactional);
      const untested = pending.filter((file) => !file.transactional).map((file) => file.fileName);
      await client.query('BEGIN');
      try {
        const before = await catalogSnapshot(client);
        for (const file of testable) {
          try {
            await client.query(file.sql);
          } catch (error) {
            throw new ShipError(
              'SHIP_ERR_MIGRATION_FAILED',
              `${file.fileName} failed when tried in a transaction: ${describeError(error)}. Nothing was changed. Fix the file and plan again.`,
              { cause: error },
            );
          }
        }
        const after = await catalogSnapshot(client);
        return {
          pending: pending.map(({ version, name, fileName, sql, transactional }) => ({ version, name, fileName, sql, transactional })),
          changes: diffSnapshots(before, after),
          untested,
        };
      } finally {
        await client.query('ROLLBACK');
      }
    });
  }

  private async runEach(files: MigrationFile[], direction: 'up' | 'down', run: (file: MigrationFile) => Promise<number>): Promise<MigrationRunOutcome> {
    const results: MigrationResult[] = [];
    let error: ShipError | undefined;
    for (const file of files) {
      if (error) {
        results.push({ version: file.version, name: file.name, direction, status: 'not-executed' });
        continue;
      }
      try {
        const durationMs = await run(file);
        results.push({ version: file.version, name: file.name, direction, status: 'success', durationMs });
        this.logger.info({ migration: file.fileName, direction, durationMs }, `migration ${direction === 'up' ? 'applied' : 'reverted'}`);
      } catch (cause) {
        const message = describeError(cause);
        results.push({ version: file.version, name: file.name, direction, status: 'error', error: message });
        error = new ShipError(
          'SHIP_ERR_MIGRATION_FAILED',
          `${file.fileName} failed ${direction === 'up' ? 'to apply' : 'to revert'}: ${message}. ` +
            `Its transaction was rolled back; ${results.filter((r) => r.status === 'success').length} earlier migration(s) in this run stand. ` +
            'Fix the file, then run `shipshape db migrate ' +
            direction +
            '` again.',
          { cause },
        );
      }
    }
    return { results, error };
  }

  private async apply(client: PoolClient, file: MigrationFile): Promise<number> {
    const started = performance.now();
    const record = async () => {
      const durationMs = Math.round(performance.now() - started);
      await client.query(`INSERT INTO ${this.table} (version, name, checksum, duration_ms) VALUES ($1::bigint, $2::text, $3::text, $4::integer)`, [
        file.version,
        file.name,
        file.checksum,
        durationMs,
      ]);
      return durationMs;
    };
    if (!file.transactional) {
      await client.query(file.sql);
      return record();
    }
    await client.query('BEGIN');
    try {
      await client.query(file.sql);
      const durationMs = await record();
      await client.query('COMMIT');
      return durationMs;
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    }
  }

  private async revert(client: PoolClient, file: MigrationFile): Promise<number> {
    const started = performance.now();
    await client.query('BEGIN');
    try {
      await client.query(file.downSql ?? '');
      await client.query(`DELETE FROM ${this.table} WHERE version = $1::bigint`, [file.version]);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    }
    return Math.round(performance.now() - started);
  }

  private async withLock<T>(options: LockOptions, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [MIGRATION_LOCK_KEY]);
      if (!rows[0]?.locked) {
        const holder = await lockHolder(client);
        if (options.noWait) {
          throw new ShipError(
            'SHIP_ERR_MIGRATION_LOCKED',
            `Another migration runner holds the migration lock (database backend pid ${holder ?? 'unknown'}). ` +
              'Wait for it to finish, or run without --no-wait to queue behind it.',
            { details: { holderPid: holder } },
          );
        }
        this.logger.warn({ holderPid: holder }, 'waiting for the migration lock held by another runner');
        await client.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
      }
      try {
        return await fn(client);
      } finally {
        await client.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]);
      }
    } finally {
      client.release();
    }
  }

  private async ensureTrackingTable(client: PoolClient): Promise<void> {
    const [schema] = this.options.trackingTable.split('.');
    if (schema && schema !== this.options.trackingTable) await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await client.query(`
      CREATE TABLE IF NOT EXISTS ${this.table} (
        version     bigint PRIMARY KEY,
        name        text NOT NULL,
        checksum    text NOT NULL,
        applied_at  timestamptz NOT NULL DEFAULT now(),
        duration_ms integer NOT NULL
      )`);
  }

  private async readApplied(db: Pick<Pool, 'query'>): Promise<AppliedMigration[]> {
    const { rows: exists } = await db.query<{ found: boolean }>('SELECT to_regclass($1::text) IS NOT NULL AS found', [this.options.trackingTable]);
    if (!exists[0]?.found) return [];
    const { rows } = await db.query<{ version: number; name: string; checksum: string; applied_at: Date; duration_ms: number }>(
      `SELECT version, name, checksum, applied_at, duration_ms FROM ${this.table} ORDER BY version`,
    );
    return rows.map((row) => ({
      version: Number(row.version),
      name: row.name,
      checksum: row.checksum,
      appliedAt: row.applied_at,
      durationMs: row.duration_ms,
    }));
  }
}

/** Reads and validates the migration folder. */
export async function readMigrationFiles(directory: string): Promise<MigrationFile[]> {
  const entries = (await readdir(directory)).filter((name) => name.endsWith('.sql')).sort();
  const ups = new Map<number, { name: string; fileName: string; sql: string }>();
  const downs = new Map<number, string>();
  for (const fileName of entries) {
    const match = FILE_PATTERN.exec(fileName);
    if (!match) {
      throw new ShipError(
        'SHIP_ERR_MIGRATION_DRIFT',
        `${path.join(directory, fileName)} is not a valid migration file name. Name migrations NNNN_lowercase_words.sql (down: NNNN_lowercase_words.down.sql).`,
      );
    }
    const version = Number(match[1]);
    const sql = await readFile(path.join(directory, fileName), 'utf8');
    if (match[3]) {
      downs.set(version, sql);
      continue;
    }
    const existing = ups.get(version);
    if (existing) {
      throw new ShipError('SHIP_ERR_MIGRATION_DRIFT', `${existing.fileName} and ${fileName} share version ${version}. Renumber one of them.`);
    }
    ups.set(version, { name: match[2] ?? '', fileName, sql });
  }
  for (const version of downs.keys()) {
    if (!ups.has(version)) {
      throw new ShipError('SHIP_ERR_MIGRATION_DRIFT', `Down migration for version ${version} has no matching up migration in ${directory}.`);
    }
  }
  return [...ups.entries()]
    .sort(([a], [b]) => a - b)
    .map(([version, file]) => ({
      version,
      name: file.name,
      fileName: file.fileName,
      sql: file.sql,
      checksum: createHash('sha256').update(file.sql).digest('hex'),
      downSql: downs.get(version),
      transactional: !file.sql.trimStart().startsWith(NO_TRANSACTION_MARKER),
    }));
}

/** Stops on any history the files do not explain. */
function checkHistory(files: MigrationFile[], applied: AppliedMigration[]): void {
  const byVersion = new Map(files.map((file) => [file.version, file]));
  const newestFile = files.at(-1)?.version ?? 0;
  for (const row of applied) {
    const file = byVersion.get(row.version);
    if (!file) {
      if (row.version > newestFile) {
        throw new ShipError(
          'SHIP_ERR_DATABASE_NEWER',
          `The database has migration ${row.version} (${row.name}) applied, but this Shipshape only knows migrations up to ${newestFile}. ` +
            'The database was migrated by a newer release: run that release, or upgrade this one.',
        );
      }
      throw new ShipError(
        'SHIP_ERR_MIGRATION_DRIFT',
        `Previously applied migration ${String(row.version).padStart(4, '0')}_${row.name}.sql is missing from the migrations folder. Restore the file; never delete applied migrations.`,
      );
    }
    if (file.checksum !== row.checksum) {
      throw new ShipError(
        'SHIP_ERR_MIGRATION_DRIFT',
        `${file.fileName} changed after it was applied (checksum ${row.checksum.slice(0, 12)} in the database, ${file.checksum.slice(0, 12)} on disk). ` +
          'Put the applied version back and make the change in a new migration.',
      );
    }
  }
  const newestApplied = applied.at(-1)?.version ?? 0;
  const appliedVersions = new Set(applied.map((row) => row.version));
  const outOfOrder = files.find((file) => !appliedVersions.has(file.version) && file.version < newestApplied);
  if (outOfOrder) {
    throw new ShipError(
      'SHIP_ERR_MIGRATION_DRIFT',
      `${outOfOrder.fileName} is pending but numbered below migration ${newestApplied}, which is already applied. Renumber it above ${newestApplied}.`,
    );
  }
}

async function lockHolder(client: PoolClient): Promise<number | undefined> {
  const { rows } = await client.query<{ pid: number }>(
    `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = $1::oid AND granted LIMIT 1`,
    [MIGRATION_LOCK_KEY],
  );
  return rows[0]?.pid;
}

interface CatalogEntry {
  kind: 'table' | 'column' | 'index';
  name: string;
}

/**
 * The planned changes that are not in the catalog now: a created object that is missing, or
 * a dropped one that is still there. Empty once the migrations were applied as planned.
 */
export async function missingSchemaChanges(db: Queryable, changes: readonly SchemaChange[]): Promise<SchemaChange[]> {
  const now = await catalogSnapshot(db);
  return changes.filter((change) => now.has(`${change.kind}\t${change.name}`) !== (change.change === 'created'));
}

async function catalogSnapshot(client: Queryable): Promise<Set<string>> {
  const { rows } = await client.query<CatalogEntry>(`
    SELECT 'table' AS kind, n.nspname || '.' || c.relname AS name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
    UNION ALL
    SELECT 'column', table_schema || '.' || table_name || '.' || column_name || ' ' || data_type
      FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
    UNION ALL
    SELECT 'index', schemaname || '.' || indexname FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`);
  return new Set(rows.map((row) => `${row.kind}\t${row.name}`));
}

function diffSnapshots(before: Set<string>, after: Set<string>): SchemaChange[] {
  const changes: SchemaChange[] = [];
  const toChange = (entry: string, change: SchemaChange['change']): SchemaChange => {
    const [kind, name] = entry.split('\t') as [CatalogEntry['kind'], string];
    return { change, kind, name };
  };
  for (const entry of after) if (!before.has(entry)) changes.push(toChange(entry, 'created'));
  for (const entry of before) if (!after.has(entry)) changes.push(toChange(entry, 'dropped'));
  return changes;
}

/** The migrator for an open database and an application's migrations (Shipshape's own by default). */
export function migratorFor(database: Database, logger: Logger, profile: AppProfile = shipshapeProfile): Migrator {
  return new Migrator(database.pool, profile.migrations, logger);
}
