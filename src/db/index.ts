/**
 * Opening "the database": the server named by DATABASE_URL, or the embedded one.
 */
import { userInfo } from 'node:os';
import type { Config } from '../config/index.ts';
import { databaseFailureOf, describeError, ShipError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { redactUrl } from '../redact.ts';
import { connectEmbedded, type EmbeddedDatabase, type StageListener } from './embedded.ts';
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

/**
 * Opens the database and checks that it answers, so a setup mistake (no such database, an
 * unknown role, nothing listening) stops whoever opened it with one sentence that says what to
 * fix — `serve`, `worker`, every CLI command and procedure — never an internal error later.
 */
export async function openDatabase(config: Config, logger: Logger, applicationName = 'shipshape', onStage?: StageListener): Promise<Database> {
  const database = await openUnchecked(config, logger, applicationName, onStage);
  try {
    await checkReachable(database, config);
  } catch (error) {
    await database.close().catch(() => undefined);
    throw error;
  }
  return database;
}

async function openUnchecked(config: Config, logger: Logger, applicationName: string, onStage: StageListener | undefined): Promise<Database> {
  const poolOptions = {
    max: config.database.poolMax,
    statementTimeoutMs: config.database.statementTimeoutMs,
    connectTimeoutMs: config.database.connectTimeoutMs,
    applicationName,
  };
  if (config.databaseUrl) {
    const pool = createPool({ ...poolOptions, connectionString: config.databaseUrl, preparedStatements: config.database.preparedStatements }, logger);
    return {
      pool,
      kind: 'postgres',
      description: `PostgreSQL at ${redactUrl(config.databaseUrl)}`,
      embedded: undefined,
      close: () => pool.end(),
    };
  }
  const connection = await connectEmbedded(config.stateDir, logger, onStage);
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

/** Fails with one sentence an operator can act on when the database cannot be used: what is wrong where (never the password), then what to do. */
async function checkReachable(database: Database, config: Pick<Config, 'databaseUrl' | 'database'>): Promise<void> {
  try {
    await database.pool.query('SELECT 1');
  } catch (error) {
    const explained =
      database.kind === 'postgres' && config.databaseUrl ? databaseSetupError(error, config.databaseUrl, config.database.connectTimeoutMs) : undefined;
    throw (
      explained ??
      new ShipError(
        'SHIP_ERR_DATABASE_UNAVAILABLE',
        `Cannot use the database (${database.description}): ${describeError(error)}. Check that the server is running and that DATABASE_URL is right.`,
        { cause: error },
      )
    );
  }
}

interface ServerAddress {
  readonly host: string;
  readonly port: string;
  readonly database: string;
  readonly user: string;
}

/** Host, port, database and user as libpq would default them; the password is never read. */
function addressOf(url: string): ServerAddress {
  const parsed = new URL(url);
  const user = decodeURIComponent(parsed.username) || userInfo().username;
  const socketHost = parsed.searchParams.get('host');
  return {
    host: parsed.hostname || socketHost || 'localhost',
    port: parsed.port || '5432',
    database: decodeURIComponent(parsed.pathname.replace(/^\//, '')) || user,
    user,
  };
}

/**
 * The operator's sentence for an error that says the database at `url` cannot be used at all
 * (missing, refusing our role, not reachable), or undefined when `error` is something else.
 */
export function databaseSetupError(error: unknown, url: string, connectTimeoutMs: number): ShipError | undefined {
  const failure = databaseFailureOf(error);
  if (failure === undefined) return undefined;
  let address: ServerAddress;
  try {
    address = addressOf(url);
  } catch {
    return undefined;
  }
  const { host, port, database, user } = address;
  const where = `${host}:${port}`;
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  // Node's AggregateError (one failure per address of a host name) has an empty message.
  const said = describeError(error) || code;
  const options = { cause: error, details: { host, port, database, user } };
  switch (failure) {
    case 'missing':
      return new ShipError(
        'SHIP_ERR_DATABASE_MISSING',
        `Database "${database}" does not exist on ${where}. Create it: createdb -h ${host} -p ${port} -U postgres ${database} — or fix the database name in DATABASE_URL.`,
        options,
      );
    case 'auth':
      if (/^role ".*" does not exist$/.test(said)) {
        return new ShipError(
          'SHIP_ERR_DATABASE_AUTH',
          `Role "${user}" does not exist on ${where}. Create it: createuser -h ${host} -p ${port} -U postgres --pwprompt ${user} — or fix the user in DATABASE_URL.`,
          options,
        );
      }
      if (code === '28P01') {
        return new ShipError(
          'SHIP_ERR_DATABASE_AUTH',
          `PostgreSQL at ${where} refused the password of role "${user}". Fix the password in DATABASE_URL (percent-encode @ : / as %40 %3A %2F), or set it on the server: ALTER ROLE "${user}" PASSWORD '…'.`,
          options,
        );
      }
      return new ShipError(
        'SHIP_ERR_DATABASE_AUTH',
        `PostgreSQL at ${where} refused role "${user}" on database "${database}" (${said}). Allow it in pg_hba.conf and reload the server, or fix the user in DATABASE_URL.`,
        options,
      );
    case 'unreachable':
      if (code === 'ECONNREFUSED' || /ECONNREFUSED/.test(said)) {
        return new ShipError(
          'SHIP_ERR_DATABASE_UNREACHABLE',
          `Nothing accepts connections at ${where}: PostgreSQL is not running there (connection refused). Start it (systemctl start postgresql; pg_lsclusters shows each cluster's port), or fix the host and port in DATABASE_URL.`,
          options,
        );
      }
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || /ENOTFOUND|EAI_AGAIN/.test(said)) {
        return new ShipError(
          'SHIP_ERR_DATABASE_UNREACHABLE',
          `The database host "${host}" does not resolve (${said}). Fix the host in DATABASE_URL, or check DNS.`,
          options,
        );
      }
      if (code === '53300') {
        return new ShipError(
          'SHIP_ERR_DATABASE_UNREACHABLE',
          `PostgreSQL at ${where} has no connection slots left (${said}). Close idle sessions (\`shipshape db diagnose\` lists them) or raise max_connections; every instance's pool (DATABASE_POOL_MAX) must fit.`,
          options,
        );
      }
      if (code === '57P03') {
        return new ShipError(
          'SHIP_ERR_DATABASE_UNREACHABLE',
          `PostgreSQL at ${where} is not accepting connections right now (${said}). Wait until it has started (or finished shutting down), then try again.`,
          options,
        );
      }
      if (/timeout/i.test(said)) {
        return new ShipError(
          'SHIP_ERR_DATABASE_UNREACHABLE',
          `PostgreSQL at ${where} did not answer within ${connectTimeoutMs} ms. Check that the host is reachable from here (firewall, security group) and the server is running, or raise DATABASE_CONNECT_TIMEOUT_MS.`,
          options,
        );
      }
      return new ShipError(
        'SHIP_ERR_DATABASE_UNREACHABLE',
        `Cannot reach PostgreSQL at ${where} (${said}). Check that the server is running there, or fix the host and port in DATABASE_URL.`,
        options,
      );
    case 'lost':
      return new ShipError(
        'SHIP_ERR_DATABASE_UNREACHABLE',
        `PostgreSQL at ${where} closed the connection (${said}). It may be restarting or an operator terminated the session; check its log and try again.`,
        options,
      );
  }
}
