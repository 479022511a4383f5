/**
 * The connection pool, the same driver and wire protocol for the embedded database
 * and for any PostgreSQL server.
 */
import pg from 'pg';
import type { Logger } from '../log.ts';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** Anything that can run a query: the pool, or one client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

export interface PoolOptions {
  readonly connectionString: string;
  readonly max: number;
  readonly statementTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly applicationName?: string;
  /**
   * Named (server-side prepared) statements for the hot queries. Off for the embedded
   * database, whose connections share one backend and so one namespace of statement names,
   * and for PgBouncer in transaction mode (DATABASE_PREPARED_STATEMENTS=false).
   */
  readonly preparedStatements?: boolean;
}

/** Pools, and the clients they hand out, whose connections each own their prepared statements. */
const preparing = new WeakSet<object>();

/**
 * A query for `db`, named so that each connection parses and plans it once and then only
 * binds and executes it, where `db` allows that (see `PoolOptions.preparedStatements`).
 * `name` must be unique per distinct `text`.
 */
export function prepared(db: Queryable, name: string, text: string, values: unknown[]): pg.QueryConfig {
  return preparing.has(db) ? { name, text, values } : { text, values };
}

// Return int8/numeric counts as JS numbers where they fit; bigint ids stay strings.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : value;
});

export function createPool(options: PoolOptions, logger: Logger): Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max,
    connectionTimeoutMillis: options.connectTimeoutMs,
    statement_timeout: options.statementTimeoutMs,
    application_name: options.applicationName ?? 'shipshape',
    idleTimeoutMillis: 30_000,
  });
  // An idle client whose server went away emits here; without a listener it would crash the process.
  pool.on('error', (error) => logger.warn({ err: error.message }, 'idle database connection failed; it was discarded'));
  // A client checked out of the pool (a transaction, a migration, a held session) has no pool
  // listener while it is out. When its session is terminated (57P01 from `db kill-connections`,
  // a restore's swap, a DBA) or the server goes away, pg emits 'error' on it, and an 'error'
  // event nobody listens to ends the process. The statement in flight fails by itself and the
  // pool discards the client when it comes back, so there is nothing to do here but not crash.
  if (options.preparedStatements) preparing.add(pool);
  pool.on('connect', (client) => {
    if (options.preparedStatements) preparing.add(client);
    client.on('error', (error) =>
      logger.debug({ err: error.message }, 'a database connection in use was lost; its statement fails and the connection is discarded'),
    );
  });
  return pool;
}

/** Runs `fn` in a transaction on one client: committed if it returns, rolled back if it throws. */
export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** Quotes an identifier (table, column, schema) for SQL; names never reach SQL any other way. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Quotes a possibly schema-qualified name such as `auth.users`. */
export function quoteQualified(name: string): string {
  return name.split('.').map(quoteIdent).join('.');
}
