/**
 * Commands that only mean something on a PostgreSQL server say so plainly on the embedded
 * database (exit 2), instead of printing an empty or misleading answer.
 */
import type { Config } from '../../config/index.ts';
import { ShipError } from '../../errors.ts';

/** PGlite is one backend in this process that every client shares. */
export const EMBEDDED_SINGLE_BACKEND = 'the embedded database (PGlite) is a single backend that every client shares';

/** Throws SHIP_ERR_NOT_SUPPORTED_EMBEDDED naming the command and why, unless DATABASE_URL is set. */
export function requirePostgres(config: Pick<Config, 'databaseUrl'>, command: string, why: string): void {
  if (config.databaseUrl !== undefined) return;
  throw new ShipError(
    'SHIP_ERR_NOT_SUPPORTED_EMBEDDED',
    `\`shipshape ${command}\` does not apply to the embedded database: ${why}. Set DATABASE_URL to a PostgreSQL server to use it.`,
  );
}
