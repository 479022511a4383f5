import type { Command } from 'commander';
import { serveUntilSignalled } from '../../runtime/server.ts';
import { cliContext } from '../context.ts';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the API server on HOST:PORT (migrations are applied automatically on the embedded database)')
    .option('--migrate', 'apply pending migrations before serving a DATABASE_URL database', false)
    .action(async (options: { migrate: boolean }) => {
      const { config, logger } = cliContext();
      await serveUntilSignalled(config, logger, { migrate: options.migrate });
    });
}
