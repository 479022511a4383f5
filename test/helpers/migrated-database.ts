/**
 * A fresh, fully migrated database for tests that call domain functions directly: a new
 * PostgreSQL database (or an embedded PGlite in a temp dir), opened exactly as the server
 * opens it.
 */
import { loadConfig, type Config } from '../../src/config/index.ts';
import { openDatabase, type Database } from '../../src/db/index.ts';
import { createLogger } from '../../src/log.ts';
import { prepareSchema } from '../../src/runtime/migrations.ts';
import { createStateDir, createTestDatabase } from './postgres.ts';

export interface MigratedDatabase {
  readonly database: Database;
  readonly config: Config;
  close(): Promise<void>;
}

export async function openMigratedDatabase(options: { embedded?: boolean; env?: Record<string, string> } = {}): Promise<MigratedDatabase> {
  const state = await createStateDir();
  const server = options.embedded ? undefined : await createTestDatabase();
  const config = loadConfig({ STATE_DIR: state.path, LOG_LEVEL: 'silent', ...(server ? { DATABASE_URL: server.url } : {}), ...options.env });
  const logger = createLogger('silent');
  const database = await openDatabase(config, logger, 'shipshape-test');
  await prepareSchema(database, logger, { migrate: true });
  return {
    database,
    config,
    close: async () => {
      await database.close();
      await server?.drop();
      await state.cleanup();
    },
  };
}
