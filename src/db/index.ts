/**
 * Opening "the database": the server named by DATABASE_URL, or the embedded one.
 */
import type { Config } from '../config/index.ts';
import { ShipError } from '../errors.ts';
import { redactUrl, type Logger } from '../log.ts';
import { connectEmbedded, type EmbeddedDatabase } from './embedded.ts';
import { createPool, type Pool } from './pool.ts';

export interface Database {
  readonly pool: Pool;
  readonly kind: 'embedded' | 'postgres';
  /** Where the data lives, safe to print: never contains a password. */
  readonly description: string;
  /** Present when this process owns the embedded database. */
  readonly embedded: EmbeddedDatabase | undefined;
  /** The process that owns the embedded database, when this process is its guest. */
  readonly embeddedOwnerPid?: number | undefined;
  close(): Promise<void>;
}

export async function openDatabase(config: Config, logger: Logger, applicationName = 'shipshape'): Promise<Database> {
  const poolOptions = {
    max: config.database.poolMax,
    statementTimeoutMs: config.database.statementTimeoutMs,
    connectTimeoutMs: config.database.connectTimeoutMs,
    applicationName,
  };
  if (config.databaseUrl) {
    const pool = createPool({ ...poolOptions, connectionString: config.databaseUrl }, logger);
    return {
      pool,
      kind: 'postgres',
      description: `PostgreSQL at ${redactUrl(config.databaseUrl)}`,
      embedded: undefined,
      close: () => pool.end(),
    };
  }
  const connection = await connectEmbedded(config.stateDir, logger);
  if (connection.role === 'guest') {
    const pool = createPool({ ...poolOptions, connectionString: connection.url }, logger);
    return {
      pool,
      kind: 'embedded',
      description: `embedded PGlite under ${config.stateDir}/db (served by process ${connection.ownerPid})`,
      embedded: undefined,
      embeddedOwnerPid: connection.ownerPid,
      close: () => pool.end(),
    };
  }
  const embedded = connection.database;
  const pool = createPool({ ...poolOptions, connectionString: embedded.url }, logger);
  return {
    pool,
    kind: 'embedded',
    description: `embedded PGlite under ${embedded.dataDir}`,
    embedded,
    close: async () => {
      await pool.end();
      await embedded.close();
    },
  };
}

/** Fails fast, with a message an operator can act on, when the database does not answer. */
export async function checkReachable(database: Database): Promise<void> {
  try {
    await database.pool.query('SELECT 1');
  } catch (error) {
    throw new ShipError(
      'SHIP_ERR_DATABASE_UNAVAILABLE',
      `Cannot reach the database (${database.description}): ${(error as Error).message}. ` +
        'Check that the server is running and that DATABASE_URL is right.',
      { cause: error },
    );
  }
}
