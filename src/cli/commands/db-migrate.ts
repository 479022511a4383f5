/**
 * `shipshape db migrate status|plan|down`: the migration runner from the command line.
 * `db migrate up` is the runbook's migration procedure (backup, review, test, apply,
 * verify, roll back) in src/ops/procedures/db-migrate.ts, registered with the others.
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { MigrationResult } from '../../db/migrator.ts';
import { migratorFor } from '../../db/migrator.ts';
import { cliContext, withDatabase } from '../context.ts';
import { emit, table } from '../output.ts';

interface MigrateOptions {
  json: boolean;
  wait: boolean;
  to?: number;
}

const parseVersion = (value: string): number => {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be a migration number such as 3 or 0003.');
  return Number(value);
};

export function registerDbMigrate(db: Command): void {
  const migrate = db.command('migrate').description('inspect and apply schema migrations');
  const common = (command: Command) =>
    command.option('--json', 'print one JSON document on stdout', false).option('--no-wait', 'fail at once if another runner holds the migration lock');

  common(migrate.command('status').description('list every migration and whether it is applied')).action(async (options: MigrateOptions) => {
    const context = cliContext();
    const rows = await withDatabase(context, (database) => migratorFor(database, context.logger).status());
    emit(options, { migrations: rows }, ({ migrations }) =>
      table(
        ['version', 'name', 'state', 'applied at', 'down'],
        migrations.map((row) => [String(row.version).padStart(4, '0'), row.name, row.state, row.appliedAt?.toISOString(), row.hasDown ? 'yes' : 'no']),
      ),
    );
  });

  common(migrate.command('plan').description('try pending migrations in a transaction, show what they change, roll back')).action(
    async (options: MigrateOptions) => {
      const context = cliContext();
      const plan = await withDatabase(context, (database) => migratorFor(database, context.logger).plan({ noWait: !options.wait }));
      emit(options, plan, (p) => {
        if (p.pending.length === 0) return 'No pending migrations. The schema is up to date.';
        const lines = [`${p.pending.length} pending migration(s), tried in a transaction and rolled back:`, ''];
        for (const file of p.pending)
          lines.push(`-- ${file.fileName}${file.transactional ? '' : ' (runs outside a transaction; not tried)'}`, file.sql.trim(), '');
        lines.push(
          'Changes:',
          ...(p.changes.length === 0 ? ['  (none in the catalog)'] : p.changes.map((c) => `  ${c.change === 'created' ? '+' : '-'} ${c.kind} ${c.name}`)),
        );
        return lines.join('\n');
      });
    },
  );

  common(migrate.command('down').description('revert the newest migration, or every migration above --to'))
    .option('--to <version>', 'revert down to (not including) this migration', parseVersion)
    .action(async (options: MigrateOptions) => {
      const context = cliContext();
      const outcome = await withDatabase(context, (database) => migratorFor(database, context.logger).down({ noWait: !options.wait, to: options.to }));
      report(options, outcome.results, 'Nothing to revert.');
      if (outcome.error) throw outcome.error;
    });
}

function report(options: MigrateOptions, results: MigrationResult[], whenEmpty: string): void {
  emit(options, { results }, ({ results: rows }) =>
    rows.length === 0
      ? whenEmpty
      : table(
          ['version', 'name', 'direction', 'status', 'ms', 'error'],
          rows.map((r) => [String(r.version).padStart(4, '0'), r.name, r.direction, r.status, r.durationMs, r.error]),
        ),
  );
}
