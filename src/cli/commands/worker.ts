/**
 * `shipshape worker`: the scheduler's workers without the HTTP API.
 */
import type { Command } from 'commander';
import { cliContext } from '../context.ts';

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run the scheduler’s workers (scheduled notifications, recurring schedules, notice emails) without the HTTP API')
    .option('--migrate', 'apply pending migrations first on a DATABASE_URL database', false)
    .action(async (options: { migrate: boolean }) => {
      const { config, logger } = cliContext();
      const { workUntilSignalled } = await import('../../runtime/worker-process.ts');
      await workUntilSignalled(config, logger, { migrate: options.migrate });
    });
}
