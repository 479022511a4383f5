/**
 * The Fastify application: plugins in the order requests meet them, then the routes.
 * Building the app does no I/O; the runtime owns listening and shutdown.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import { closeRedis, createRedis } from '../adapters/redis.ts';
import { APP_VERSION_HEADER, appVersionOf } from '../domain/version-metrics.ts';
import { createUpdateRequestCounter, UPDATE_ID_HEADER } from '../domain/update-health.ts';
import { describeError } from '../errors.ts';
import { redactedPaths } from '../log.ts';
import type { ApiContext } from './context.ts';
import { apiDocs } from './api-docs.ts';
import { inputOf, passThroughCompilers } from './route-schema.ts';
import type { RouteInput } from './validation.ts';
import { clientError, frameworkError, registerErrorHandling } from './plugins/errors.ts';
import { createGuards } from './plugins/guards.ts';
import { acceptJsonSentAsForm } from './plugins/json-from-curl.ts';
import { fallbackStore } from './plugins/rate-limit-store.ts';
import { checkRequestFraming, requestIdFrom } from './plugins/request-framing.ts';
import { accountRoutes } from './routes/account.ts';
import { adminRoutes } from './routes/admin.ts';
import { authRoutes } from './routes/auth.ts';
import { meRoutes } from './routes/me.ts';
import { deviceRoutes, pushSendRoutes } from './routes/push.ts';
import { scheduledNotificationRoutes } from './routes/scheduled-notifications.ts';
import { systemRoutes } from './routes/system.ts';
import { taskRoutes } from './routes/tasks.ts';
import { updateRoutes } from './routes/updates.ts';
import { webPages } from './pages/index.ts';

/** JSON bodies beyond this are refused with 413: nothing the app sends comes close. */
const BODY_LIMIT_BYTES = 64 * 1024;

/** A route as registered: what the fuzzer (test/http/fuzz.test.ts) enumerates, so a new route is fuzzed without being listed. */
export interface RouteEntry {
  readonly method: string;
  readonly url: string;
  readonly input: RouteInput;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route of the app, with the zod schemas it reads its input with. */
    readonly routeTable: readonly RouteEntry[];
  }
}

export async function buildApp(context: ApiContext): Promise<FastifyInstance> {
  const logger: FastifyBaseLogger = context.logger.child({}, { redact: redactedPaths });
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: BODY_LIMIT_BYTES,
    trustProxy: context.config.trustProxy,
    // A client's X-Request-Id only when short and plain (plugins/request-framing.ts).
    requestIdHeader: false,
    genReqId: requestIdFrom,
    // What Fastify and Node answer before routing comes in the same envelope (plugins/errors.ts).
    frameworkErrors: frameworkError,
    clientErrorHandler: clientError,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Each route's `schema` documents it; its handler validates with the same zod schemas
    // (route-schema.ts says why Fastify's validator passes input through).
    schemaController: passThroughCompilers,
  });
  app.decorateRequest('auth', null);
  app.decorateRequest('maintenanceBypass', false);
  const routeTable: RouteEntry[] = [];
  app.decorate('routeTable', routeTable);
  const docs = apiDocs({ version: context.version, apiUrl: context.config.apiUrl, logger });
  app.addHook('onRoute', (route) => {
    // Web pages (src/http/pages) are for people, not API routes: kept out of the document and the table.
    if (route.config?.page) route.schema = { ...route.schema, hide: true };
    // The document's own routes (/openapi.json, /docs) are hidden from it, and are no API route.
    if (route.schema?.hide === true) return;
    docs.document(route);
    for (const method of [route.method].flat()) routeTable.push({ method, url: route.url, input: inputOf(route.schema) });
  });
  // GET /openapi.json and Swagger UI at /docs, built on their first request (api-docs.ts).
  docs.register(app);
  registerErrorHandling(app);
  checkRequestFraming(app);

  // Shed load before it turns into timeouts for everyone.
  await app.register(underPressure, {
    maxEventLoopDelay: context.config.overloadEventLoopDelayMs,
    retryAfter: 10,
    pressureHandler: (_request, reply) => {
      reply
        .status(503)
        .header('retry-after', '10')
        .send({
          error: { code: 'SHIP_ERR_OVERLOADED', message: 'The server is overloaded. Retry in a few seconds.' },
        });
    },
  });
  // Counters live in Redis when there is one, so limits hold across every instance; while Redis
  // is down or stalls they are counted in this process (plugins/rate-limit-store.ts), so a Redis
  // outage never blocks a sign-in. Keys under REDIS_PREFIX like every other key.
  const redis = context.config.redisUrl ? await createRedis({ url: context.config.redisUrl, name: 'shipshape-rate-limit', logger: context.logger }) : undefined;
  if (redis) {
    redis.connect().catch(() => undefined);
    app.addHook('onClose', async () => closeRedis(redis));
  }
  const store = fallbackStore({ redis, nameSpace: `${context.config.redisPrefix}rate-limit:`, logger: context.logger, alert: context.alerts });
  await app.register(rateLimit, { global: false, store });
  // Fastify parses text/plain by default; this API speaks JSON only, so anything else is a 415.
  app.removeContentTypeParser('text/plain');

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  // API requests and errors per OTA update the app says it runs: what update rollouts are gated on.
  const updateRequests = createUpdateRequestCounter(context.database.pool, {
    intervalMs: context.config.metricsFlushIntervalMs,
    onError: (error) => context.logger.warn({ err: describeError(error) }, 'API counts per update could not be written; kept for the next flush'),
  });
  app.addHook('onClose', async () => updateRequests.close());
  app.addHook('onResponse', async (request, reply) => {
    // The error rate and p95 are the app's: a load balancer polling /health (which answers 503
    // while the database is slow to answer it) would otherwise count its own probes as errors.
    if (request.routeOptions.config.probe) return;
    // A 503 served because an operator turned maintenance (or read-only mode) on is the system working, not an error.
    const deliberate = reply.statusCode === 503 && context.appState.current.maintenance.enabled;
    context.metrics.record(deliberate ? 200 : reply.statusCode, reply.elapsedTime, appVersionOf(request.headers[APP_VERSION_HEADER]));
    updateRequests.count(request.headers[UPDATE_ID_HEADER], deliberate ? 200 : reply.statusCode);
  });

  const guards = createGuards(context);
  app.addHook('preHandler', guards.maintenanceGate);

  const deps = { context, guards };
  await app.register(systemRoutes, deps);
  await app.register(authRoutes, deps);
  await app.register(taskRoutes, deps);
  await app.register(meRoutes, deps);
  await app.register(accountRoutes, deps);
  await app.register(deviceRoutes, deps);
  await app.register(updateRoutes, deps);
  // The admin routes, in their own encapsulated scope: only they read JSON that curl labelled
  // form-urlencoded, as the runbook's scripts send it (plugins/json-from-curl.ts says why).
  await app.register(async (admin) => {
    acceptJsonSentAsForm(admin);
    await admin.register(adminRoutes, deps);
    await admin.register(pushSendRoutes, deps);
    await admin.register(scheduledNotificationRoutes, deps);
  });
  // The web pages (reset password, status, console) in their own scope: forms, HTML errors, CSP.
  await app.register(async (pages) => webPages(pages, context));
  return app;
}
