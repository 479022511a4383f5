import type { Command } from 'commander';
import { startupProgress } from '../../runtime/progress.ts';
import { cliContext } from '../context.ts';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the API server on HOST:PORT (migrations are applied automatically on the embedded database)')
    .option('--migrate', 'apply pending migrations before serving a DATABASE_URL database', false)
    .option('--no-workers', 'do not run the scheduler’s workers in this process (run `shipshape worker` elsewhere)')
    .action(async (options: { migrate: boolean; workers: boolean }) => {
      const { config, logger } = cliContext();
      const progress = startupProgress(logger, config.startupProgressIntervalMs);
      progress.stage('the server: loading its code');
      // The server (Fastify and the rest) is loaded only by the command that serves.
      const { serveUntilSignalled } = await import('../../runtime/server.ts');
      try {
        await serveUntilSignalled(config, logger, { migrate: options.migrate, workers: options.workers, progress });
      } finally {
        // Already stopped once ready; this covers a start that failed before the server's own cleanup.
        progress.stop();
      }
    });
}
