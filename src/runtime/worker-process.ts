/**
 * `shipshape worker`: the scheduler's workers without the HTTP API, for deployments that run
 * them apart. The same lifetime as `serve`: open the database, check the schema, start, and
 * on SIGTERM/SIGINT finish or hand back the running jobs and close in reverse order.
 */
import { ExpoPushClient } from '../adapters/expo-push.ts';
import { createMailer } from '../adapters/mailer.ts';
import type { Config } from '../config/index.ts';
import { openDatabase } from '../db/index.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { prepareSchema } from './migrations.ts';
import { NotificationWorker } from './notification-worker.ts';
import { startWorkers } from '../scheduler/workers.ts';

export interface RunningWorker {
  close(): Promise<void>;
}

export async function startWorkerProcess(config: Config, logger: Logger, options: { migrate: boolean }): Promise<RunningWorker> {
  const database = await openDatabase(config, logger, 'shipshape-worker');
  const closers: Array<() => Promise<void> | void> = [() => database.close()];
  const close = async () => {
    for (const closer of [...closers].reverse()) await closer();
  };
  try {
    logger.info({ database: database.description }, `database: ${database.description}`);
    await prepareSchema(database, logger, options);
    const push = new ExpoPushClient({ pushUrl: config.push.expoPushUrl, accessToken: config.push.expoAccessToken });
    const mailer = createMailer({ smtpUrl: config.smtpUrl, from: config.mailFrom }, logger);
    closers.push(() => mailer.close());
    // Resumes push sends abandoned by a process that died, and reads receipts, as `serve` does.
    const notifications = new NotificationWorker({ pool: database.pool, push, logger });
    notifications.start();
    closers.push(() => notifications.close());
    const workers = await startWorkers({ config, database, logger, push, mailer, instanceName: 'shipshape-worker' });
    closers.push(() => workers.close());
    logger.info('worker running (no HTTP API in this process)');
    return { close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Runs until a signal: the first stops gracefully, a second one forces the exit. */
export async function workUntilSignalled(config: Config, logger: Logger, options: { migrate: boolean }): Promise<void> {
  const worker = await startWorkerProcess(config, logger, options);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn(`${signal} again: exiting now; running jobs are retried by another worker`);
        process.exit(1);
      }
      stopping = true;
      logger.info(`${signal} received: finishing or handing back running jobs (send ${signal} again to force)`);
      worker.close().then(
        () => {
          logger.info('stopped cleanly');
          resolve();
        },
        (error: unknown) => {
          logger.error({ err: describeError(error) }, 'error while stopping');
          process.exitCode = 1;
          resolve();
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
