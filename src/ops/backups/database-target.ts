/**
 * Which database a backup or restore is about, and the connection URLs the tools need.
 *
 * The application database is DATABASE_URL's (or the embedded one). Creating, dropping and
 * renaming databases must be done from a connection to another database on the same server
 * (PostgreSQL refuses to rename or drop the database a session is connected to), so the
 * "admin" URL is the same server and credentials pointed at `postgres` (or `template1` when
 * the application database is itself called `postgres`).
 */
import type { Config } from '../../config/index.ts';
import { ShipError } from '../../errors.ts';

/** The lock resource every procedure that reads or replaces the application database takes. */
export function databaseLockResource(config: Config): string {
  return `database:${applicationDatabaseName(config)}`;
}

/** The application database's name: DATABASE_URL's path, or `embedded`. */
export function applicationDatabaseName(config: Config): string {
  return config.databaseUrl === undefined ? 'embedded' : databaseNameOf(config.databaseUrl);
}

export function databaseNameOf(url: string): string {
  const parsed = parseUrl(url);
  const fromPath = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  const fromQuery = parsed.searchParams.get('dbname');
  const name = fromPath !== '' ? fromPath : (fromQuery ?? decodeURIComponent(parsed.username));
  if (name === '') {
    throw new ShipError('SHIP_ERR_CONFIG', 'DATABASE_URL names no database. Add it as the path: postgres://user@host:5432/DBNAME.');
  }
  return name;
}

/** The same server and credentials, another database. */
export function withDatabaseName(url: string, name: string): string {
  const parsed = parseUrl(url);
  parsed.pathname = `/${encodeURIComponent(name)}`;
  parsed.searchParams.delete('dbname');
  return parsed.toString();
}

/** Where CREATE/DROP/ALTER DATABASE for `databaseName` is run from. */
export function adminUrlFor(url: string, databaseName: string): string {
  return withDatabaseName(url, databaseName === 'postgres' ? 'template1' : 'postgres');
}

/** A name PostgreSQL accepts as a database identifier without surprises (what `--target` takes). */
export const DATABASE_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/;

function parseUrl(url: string): URL {
  try {
    return new URL(url);
  } catch {
    throw new ShipError('SHIP_ERR_CONFIG', 'DATABASE_URL is not a valid URL. Use postgres://user:password@host:5432/dbname.');
  }
}
