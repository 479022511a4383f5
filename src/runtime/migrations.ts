/**
 * What start-up does about pending migrations: apply them on the embedded database
 * (nobody else shares it), and refuse to serve a production database whose schema is
 * behind the code unless the operator said `--migrate`.
 */
import type { Database } from '../db/index.ts';
import { migratorFor } from '../db/migrator.ts';
import { ShipError } from '../errors.ts';
import type { Logger } from '../log.ts';

export async function prepareSchema(database: Database, logger: Logger, options: { migrate: boolean; onStage?: (stage: string) => void }): Promise<void> {
  const migrator = migratorFor(database, logger);
  const pending = await migrator.pending();
  if (pending.length === 0) return;
  if (database.kind === 'postgres' && !options.migrate) {
    throw new ShipError(
      'SHIP_ERR_MIGRATIONS_PENDING',
      `${pending.length} migration(s) are pending (${pending.map((file) => file.fileName).join(', ')}), so the API would run against an old schema. ` +
        'Run `shipshape db migrate up` (after a backup), or start with `shipshape serve --migrate`.',
    );
  }
  logger.info({ pending: pending.map((file) => file.fileName) }, 'applying pending migrations');
  if (!options.onStage) {
    const outcome = await migrator.up();
    if (outcome.error) throw outcome.error;
    return;
  }
  // One at a time when someone is watching, so a progress line can say how far it is.
  for (const [index, file] of pending.entries()) {
    options.onStage(`the schema: applying migrations ${index + 1}/${pending.length} (${file.fileName})`);
    const outcome = await migrator.up({ to: file.version });
    if (outcome.error) throw outcome.error;
  }
}
