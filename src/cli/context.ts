/**
 * What every command starts from: validated configuration and a logger on stderr.
 */
import { loadConfig, loadDotEnv, loadLocalConfig, type Config } from '../config/index.ts';
import type { Database } from '../db/index.ts';
import { createLogger, type Logger } from '../log.ts';

export interface CliContext {
  readonly config: Config;
  readonly logger: Logger;
}

export function cliContext(): CliContext {
  loadDotEnv();
  const config = loadConfig();
  return { config, logger: createLogger(config.logLevel) };
}

/** For the commands that only read files under STATE_DIR: the rest of the configuration is neither read nor checked. */
export function localContext(): { readonly stateDir: string; readonly logger: Logger } {
  loadDotEnv();
  const { stateDir, logLevel } = loadLocalConfig();
  return { stateDir, logger: createLogger(logLevel) };
}

/** Opens the database for one command and always closes it. */
export async function withDatabase<T>(context: CliContext, fn: (database: Database) => Promise<T>): Promise<T> {
  // pg (and PGlite) load with the first command that needs the database.
  const { openDatabase } = await import('../db/index.ts');
  const database = await openDatabase(context.config, context.logger, 'shipshape-cli');
  try {
    return await fn(database);
  } finally {
    await database.close();
  }
}
