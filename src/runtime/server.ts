/**
 * `shipshape serve`: the API server's whole lifetime in one place — open the database,
 * bring the schema up to date, listen, and on SIGTERM/SIGINT stop taking requests,
 * finish the ones in flight, and close everything in reverse order of opening.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { createMailer } from '../adapters/mailer.ts';
import type { Config } from '../config/index.ts';
import { openDatabase, type Database } from '../db/index.ts';
import { AppStateWatcher } from '../domain/app-state-watcher.ts';
import { buildApp } from '../http/app.ts';
import { RequestMetrics } from '../http/metrics.ts';
import type { Logger } from '../log.ts';
import { configuredAlerter } from '../ops/engine/alerts.ts';
import { version } from '../version.ts';
import { checkListenAddress, listenError } from './listen-address.ts';
import { startLiveOperations, type LiveOperations } from './live-operations.ts';
import { startMetricsFlusher } from './metrics-flusher.ts';
import { prepareSchema } from './migrations.ts';
import { noProgress, type StartupProgress } from './progress.ts';
import { startWorkers, type Workers } from '../scheduler/workers.ts';
import { describeError } from '../errors.ts';

export interface RunningServer {
  readonly app: FastifyInstance;
  readonly database: Database;
  /** Base URL the server listens on, e.g. http://127.0.0.1:3000 */
  readonly url: string;
  /** Caches and change feeds (tests look at the session cache through this). */
  readonly live: LiveOperations;
  /** The scheduler's workers, when this server runs them. */
  readonly workers: Workers | undefined;
  close(): Promise<void>;
}

export interface ServeOptions {
  readonly migrate: boolean;
  /** Also run the scheduler's workers in this process (`shipshape serve` does unless --no-workers). */
  readonly workers?: boolean;
  /** Told each stage of start-up, for the progress lines of a slow start; the ready line says how long it took. */
  readonly progress?: StartupProgress;
}

export async function startServer(config: Config, logger: Logger, options: ServeOptions): Promise<RunningServer> {
  const progress = options.progress ?? noProgress;
  const onStage = (stage: string) => progress.stage(stage);
  await checkListenAddress(config.host, config.port);
  onStage(config.databaseUrl ? 'the database: connecting' : 'the embedded database');
  const database = await openDatabase(config, logger, 'shipshape-api', onStage);
  const closers: Array<() => Promise<void> | void> = [() => database.close()];
  const close = async () => {
    for (const closer of closers.reverse()) await closer();
  };
  try {
    logger.info({ database: database.description }, `database: ${database.description}`);
    onStage('the schema: checking for pending migrations');
    await prepareSchema(database, logger, { migrate: options.migrate, onStage });
    onStage('the API: starting caches, feeds and workers');

    const appState = new AppStateWatcher(database.pool, logger, config.appStatePollMs);
    await appState.start();
    closers.push(() => appState.stop());

    const live = await startLiveOperations({ config, database, logger, appState });
    closers.push(() => live.close());

    const mailer = createMailer({ smtpUrl: config.smtpUrl, from: config.mailFrom }, logger);
    closers.push(() => mailer.close());

    // Stopped after the app (closers run in reverse): requests end first, then jobs finish or are handed back.
    const workers = options.workers ? await startWorkers({ config, database, logger, push: live.push, mailer, instanceName: 'shipshape-api' }) : undefined;
    if (workers) closers.push(() => workers.close());

    const metrics = new RequestMetrics(`api:${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`);
    const flusher = startMetricsFlusher({
      metrics,
      pool: database.pool,
      intervalMs: config.metricsFlushIntervalMs,
      logger: logger.child({ component: 'metrics' }),
    });
    // Closed after the app: the requests it finishes are counted in the last flush.
    closers.push(() => flusher.close());

    onStage('the API: building the routes');
    const alerter = await configuredAlerter(config, logger);
    const app = await buildApp({ config, logger, database, appState, live, mailer, metrics, version, alerts: (alert) => alerter.send(alert) });
    closers.push(() => app.close());
    await app.listen({ port: config.port, host: config.host }).catch((error: unknown) => {
      throw listenError(error, config.host, config.port) ?? error;
    });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const url = `http://${config.host}:${port}`;
    progress.stop();
    const readySeconds = Number(progress.elapsedSeconds().toFixed(1));
    logger.info({ url, version, readySeconds }, `Shipshape ${version} listening on ${url}${options.progress ? ` (ready in ${readySeconds} s)` : ''}`);
    return { app, database, url, live, workers, close };
  } catch (error) {
    progress.stop();
    await close();
    throw error;
  }
}

/** Runs until a signal: the first stops gracefully, a second one forces the exit. */
export async function serveUntilSignalled(config: Config, logger: Logger, options: ServeOptions): Promise<void> {
  const server = await startServer(config, logger, options);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn(`${signal} again: exiting now without waiting for in-flight work`);
        process.exit(1);
      }
      stopping = true;
      logger.info(`${signal} received: no longer accepting requests, finishing those in flight (send ${signal} again to force)`);
      server.close().then(
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
