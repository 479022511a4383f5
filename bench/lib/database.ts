/**
 * Each benchmark gets its own database on the real server, migrated with Shipshape's own
 * migrator, and dropped afterwards even if connections are still open.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { shipshapeProfile } from '../../src/app-profile.ts';
import { Migrator } from '../../src/db/migrator.ts';
import { createPool, type Pool } from '../../src/db/pool.ts';
import { ShipError } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';

export const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface BenchDatabase {
  readonly name: string;
  readonly url: string;
  /** A small pool for seeding and capturing SQL; the server under test opens its own. */
  readonly pool: Pool;
  drop(): Promise<void>;
}

export async function createBenchDatabase(adminUrl: string, label: string): Promise<BenchDatabase> {
  const name = `shipshape_bench_${label}_${randomBytes(4).toString('hex')}`;
  await adminQuery(adminUrl, `CREATE DATABASE "${name}"`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const logger = createLogger('warn');
  const pool = createPool(
    { connectionString: url.toString(), max: 4, statementTimeoutMs: 600_000, connectTimeoutMs: 10_000, applicationName: 'shipshape-bench' },
    logger,
  );
  const drop = async () => {
    await pool.end().catch(() => undefined);
    await adminQuery(adminUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  };
  try {
    const outcome = await new Migrator(pool, shipshapeProfile.migrations, logger).up();
    if (outcome.error) throw outcome.error;
  } catch (error) {
    await drop();
    throw error;
  }
  return { name, url: url.toString(), pool, drop };
}

export async function adminQuery<T extends pg.QueryResultRow = pg.QueryResultRow>(adminUrl: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: adminUrl, application_name: 'shipshape-bench' });
  try {
    await client.connect();
  } catch (error) {
    throw new ShipError(
      'SHIP_ERR_DATABASE_UNAVAILABLE',
      `Cannot reach PostgreSQL for the benchmarks: ${(error as Error).message}. Start the server on 127.0.0.1:5432 or pass --postgres-url (or BENCH_POSTGRES_URL).`,
      { cause: error },
    );
  }
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}
