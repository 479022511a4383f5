/**
 * The database a restore replaces, the database it builds beside it, and how to reach each.
 *
 * On PostgreSQL a restore never loads into the live database: it loads into a new database
 * on the same server, `<name>__incoming_<run>`, where nothing needs dropping (an in-place
 * `pg_restore --clean` cannot drop pg-boss's partitioned queue tables), checks and migrates
 * it there, and only then swaps the names: live → `<name>__pre_restore_<run>`, incoming →
 * live. The replaced database is kept under its pre-restore name, so a rollback is a rename
 * back. The names are deterministic from the run id, so resume and rollback find them after
 * a crash at any point. The embedded database is a folder; it is opened (as its owner) for
 * each piece of work and closed again (see restore-embedded.ts for its swap).
 */
import type { Config } from '../../config/index.ts';
import { openDatabase } from '../../db/index.ts';
import { createPool, type Pool } from '../../db/pool.ts';
import { ShipError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { databaseExists, withClient } from './connections.ts';
import { adminUrlFor, applicationDatabaseName, withDatabaseName } from './database-target.ts';

export type PostgresTarget = {
  readonly kind: 'postgres';
  /** The database's own name. */
  readonly name: string;
  readonly url: string;
  /** Where CREATE/ALTER/DROP DATABASE are run from. */
  readonly adminUrl: string;
  /** The database this run restores into, beside the live one. */
  readonly incoming: string;
  readonly incomingUrl: string;
  /** The name the replaced database is kept under after the swap. */
  readonly preRestore: string;
  readonly preRestoreUrl: string;
  /** It is the application's database (maintenance mode applies), not a `--target`. */
  readonly isApplication: boolean;
};

export type RestoreTarget = PostgresTarget | { readonly kind: 'embedded'; readonly stateDir: string; readonly isApplication: true };

/** `<name>__<role>_<run>`, cut to PostgreSQL's 63 bytes from the name's end, never the run's. */
export function sideName(databaseName: string, role: 'incoming' | 'pre_restore', runId: string): string {
  const suffix = `__${role}_${runId.replace(/^r-/, '').replaceAll('-', '_')}`;
  return `${databaseName.slice(0, 63 - suffix.length)}${suffix}`;
}

/** The prefix every kept pre-restore database of `databaseName` starts with (for pruning). */
export function preRestorePrefix(databaseName: string): string {
  // Run ids all have the same length (r-YYYYMMDD-HHMMSS-xxxx), so the cut is the same for every run.
  const sample = sideName(databaseName, 'pre_restore', 'r-00000000-000000-0000');
  return sample.slice(0, sample.length - '00000000_000000_0000'.length);
}

export function restoreTargetFor(config: Config, runId: string, target: string | undefined): RestoreTarget {
  if (config.databaseUrl === undefined) {
    if (target !== undefined) {
      throw new ShipError(
        'SHIP_ERR_NOT_SUPPORTED_EMBEDDED',
        '--target restores into another PostgreSQL database; with the embedded database there is only one. Set DATABASE_URL to restore into a PostgreSQL server.',
      );
    }
    return { kind: 'embedded', stateDir: config.stateDir, isApplication: true };
  }
  const application = applicationDatabaseName(config);
  const name = target ?? application;
  const incoming = sideName(name, 'incoming', runId);
  const preRestore = sideName(name, 'pre_restore', runId);
  return {
    kind: 'postgres',
    name,
    url: withDatabaseName(config.databaseUrl, name),
    adminUrl: adminUrlFor(config.databaseUrl, name),
    incoming,
    incomingUrl: withDatabaseName(config.databaseUrl, incoming),
    preRestore,
    preRestoreUrl: withDatabaseName(config.databaseUrl, preRestore),
    isApplication: name === application,
  };
}

/** Which of the run's three databases exist now. */
export interface Layout {
  readonly live: boolean;
  readonly incoming: boolean;
  readonly preRestore: boolean;
}

export async function layoutOf(target: PostgresTarget): Promise<Layout> {
  return withClient(target.adminUrl, async (client) => ({
    live: await databaseExists(client, target.name),
    incoming: await databaseExists(client, target.incoming),
    preRestore: await databaseExists(client, target.preRestore),
  }));
}

/** Runs `fn` with a small pool on the database at `url`. */
export async function withPoolOn<T>(url: string, config: Config, logger: Logger, fn: (pool: Pool) => Promise<T>): Promise<T> {
  const pool = createPool(
    {
      connectionString: url,
      max: 2,
      statementTimeoutMs: config.database.statementTimeoutMs,
      connectTimeoutMs: config.database.connectTimeoutMs,
      applicationName: 'shipshape-restore',
    },
    logger,
  );
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

/**
 * Runs `fn` with a pool on the live database: on PostgreSQL the one under its own name
 * (throws when there is none); the embedded one opened as its owner.
 */
export async function withLivePool<T>(target: RestoreTarget, config: Config, logger: Logger, fn: (pool: Pool) => Promise<T>): Promise<T> {
  if (target.kind === 'embedded') {
    const database = await openDatabase(config, logger, 'shipshape-restore');
    try {
      if (database.embedded === undefined) {
        throw new ShipError(
          'SHIP_ERR_EMBEDDED_DB_LOCKED',
          `The embedded database was opened by another process during the restore (${database.description}). Stop it; then continue with \`shipshape runs resume\` or \`shipshape runs rollback\`.`,
        );
      }
      return await fn(database.pool);
    } finally {
      await database.close();
    }
  }
  if (!(await layoutOf(target)).live) throw new ShipError('SHIP_ERR_STEP_FAILED', `Database ${target.name} does not exist.`);
  return withPoolOn(target.url, config, logger, fn);
}

/**
 * Runs `fn` with a pool on the restored data before it goes live: on PostgreSQL the incoming
 * database; the embedded database was swapped in by the load, so it is the live one.
 */
export async function withRestoredPool<T>(target: RestoreTarget, config: Config, logger: Logger, fn: (pool: Pool) => Promise<T>): Promise<T> {
  if (target.kind === 'embedded') return withLivePool(target, config, logger, fn);
  if (!(await layoutOf(target)).incoming) {
    throw new ShipError(
      'SHIP_ERR_STEP_FAILED',
      `Database ${target.incoming}, which this run restores into, does not exist. Roll the run back with \`shipshape runs rollback\` and start again.`,
    );
  }
  return withPoolOn(target.incomingUrl, config, logger, fn);
}
