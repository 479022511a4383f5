/**
 * The database a restore replaces, and how to reach it at each point of the run.
 *
 * On PostgreSQL the target is parked under another name while it is replaced (see
 * connections.ts), so "connect to the target" means: to its own name when it is open, to
 * the parked name while parked. Looking it up each time, rather than trusting the step the
 * run believes it is at, is what lets resume and rollback work after a crash at any point.
 * The embedded database is a folder; it is opened (as its owner) for each piece of work and
 * closed again, so that the restore can swap the folder between steps.
 */
import type { Config } from '../../config/index.ts';
import { openDatabase } from '../../db/index.ts';
import { createPool, type Pool } from '../../db/pool.ts';
import { ShipError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { parkedName, whereabouts, withClient, type Whereabouts } from './connections.ts';
import { adminUrlFor, applicationDatabaseName, withDatabaseName } from './database-target.ts';

export type RestoreTarget =
  | {
      readonly kind: 'postgres';
      /** The database's own name. */
      readonly name: string;
      readonly url: string;
      /** Where CREATE/ALTER/DROP DATABASE are run from. */
      readonly adminUrl: string;
      /** The name it is parked under during this run. */
      readonly parked: string;
      readonly parkedUrl: string;
      /** It is the application's database (maintenance mode applies), not a `--target`. */
      readonly isApplication: boolean;
    }
  | { readonly kind: 'embedded'; readonly stateDir: string; readonly isApplication: true };

export function restoreTargetFor(config: Config, runId: string, target: string | undefined): RestoreTarget {
  if (config.databaseUrl === undefined) {
    if (target !== undefined) {
      throw new ShipError('SHIP_ERR_NOT_SUPPORTED_EMBEDDED', '--target restores into another PostgreSQL database; with the embedded database there is only one. Set DATABASE_URL to restore into a PostgreSQL server.');
    }
    return { kind: 'embedded', stateDir: config.stateDir, isApplication: true };
  }
  const application = applicationDatabaseName(config);
  const name = target ?? application;
  const parked = parkedName(name, runId);
  return {
    kind: 'postgres',
    name,
    url: withDatabaseName(config.databaseUrl, name),
    adminUrl: adminUrlFor(config.databaseUrl, name),
    parked,
    parkedUrl: withDatabaseName(config.databaseUrl, parked),
    isApplication: name === application,
  };
}

/** Where a PostgreSQL target is now: under its own name, parked, or not there. */
export async function locate(target: Extract<RestoreTarget, { kind: 'postgres' }>): Promise<Whereabouts> {
  return withClient(target.adminUrl, (client) => whereabouts(client, target.name, target.parked));
}

/** Runs `fn` with a small pool on the target wherever it is now; throws when it does not exist. */
export async function withTargetPool<T>(target: RestoreTarget, config: Config, logger: Logger, fn: (pool: Pool) => Promise<T>): Promise<T> {
  if (target.kind === 'embedded') {
    const database = await openDatabase(config, logger, 'shipshape-restore');
    try {
      if (database.embedded === undefined) {
        throw new ShipError('SHIP_ERR_EMBEDDED_DB_LOCKED', `The embedded database was opened by another process during the restore (${database.description}). Stop it; then continue with \`shipshape runs resume\` or \`shipshape runs rollback\`.`);
      }
      return await fn(database.pool);
    } finally {
      await database.close();
    }
  }
  const where = await locate(target);
  if (where === 'missing') throw new ShipError('SHIP_ERR_STEP_FAILED', `Database ${target.name} does not exist (neither under its own name nor parked as ${target.parked}).`);
  const pool = createPool(
    {
      connectionString: where === 'parked' ? target.parkedUrl : target.url,
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
