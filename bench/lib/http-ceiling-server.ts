/**
 * The HTTP ceiling: Shipshape's own Fastify application (`buildApp`, with every plugin
 * and hook the real server registers: under-pressure, rate-limit, request ids, the
 * metrics hook, the maintenance gate) plus three routes that answer constant bodies
 * captured from the real server, without touching the database. Whatever Shipshape
 * loses against this is spent on the database and the route's own work.
 *
 * Run as its own process: `node bench/lib/http-ceiling-server.ts <port> <payloads.json>`,
 * with DATABASE_URL and LOG_LEVEL set as for `shipshape serve`. The database is opened
 * and the background work started exactly as the real server does; only the ceiling's
 * routes never query it.
 */
import { readFile } from 'node:fs/promises';
import { createMailer } from '../../src/adapters/mailer.ts';
import { loadConfig } from '../../src/config/index.ts';
import { openDatabase } from '../../src/db/index.ts';
import { AppStateWatcher } from '../../src/domain/app-state-watcher.ts';
import { buildApp } from '../../src/http/app.ts';
import { RequestMetrics } from '../../src/http/metrics.ts';
import { startLiveOperations } from '../../src/runtime/live-operations.ts';
import { startMetricsFlusher } from '../../src/runtime/metrics-flusher.ts';
import { createLogger } from '../../src/log.ts';
import { version } from '../../src/version.ts';
import { CEILING_ROUTES, type CeilingPayloads } from './ceiling.ts';

async function main(): Promise<void> {
  const [portArgument, payloadFile] = process.argv.slice(2);
  if (!portArgument || !payloadFile) throw new Error('usage: http-ceiling-server.ts <port> <payloads.json>');
  const payloads: CeilingPayloads = JSON.parse(await readFile(payloadFile, 'utf8'));
  const config = loadConfig({ ...process.env, PORT: portArgument });
  const logger = createLogger(config.logLevel);

  // Built as src/runtime/server.ts builds it, so background work (state polling, change
  // feeds) costs the ceiling what it costs the real server.
  const database = await openDatabase(config, logger, 'shipshape-bench-ceiling');
  const appState = new AppStateWatcher(database.pool, logger, config.appStatePollMs);
  await appState.start();
  const live = await startLiveOperations({ config, database, logger, appState });
  const mailer = createMailer({ smtpUrl: config.smtpUrl, from: config.mailFrom }, logger);
  const metrics = new RequestMetrics(`bench-ceiling:${process.pid}`);
  const flusher = startMetricsFlusher({ metrics, pool: database.pool, intervalMs: config.metricsFlushIntervalMs, logger });
  const app = await buildApp({ config, logger, database, appState, live, mailer, metrics, version });
  app.get(CEILING_ROUTES.health, async () => payloads.health);
  app.get(CEILING_ROUTES.listTasks, async () => payloads.taskPage);
  app.post(CEILING_ROUTES.createTask, async (_request, reply) => reply.status(201).send(payloads.createdTask));
  await app.listen({ port: config.port, host: config.host });

  const stop = async () => {
    await app.close();
    await flusher.close();
    mailer.close();
    await live.close();
    appState.stop();
    await database.close();
  };
  const onSignal = () => void stop().finally(() => process.exit(0));
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
