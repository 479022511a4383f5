/**
 * What the runbook and the mobile app poll: /health, /config, /metrics.
 *
 * /metrics describes the whole deployment over the last 5 minutes (every instance's flushed
 * counts, this one's flushed first so its latest requests are in), the window and figures the
 * watchdog alerts on.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { METRICS_WINDOW_MS, readDeploymentMetrics, type DeploymentMetrics } from '../../domain/request-metrics.ts';
import { readVersionMetrics } from '../../domain/version-metrics.ts';
import { countActiveUsers } from '../../domain/sessions.ts';
import { describeError, isShipError, ShipError } from '../../errors.ts';
import type { ApiContext } from '../context.ts';
import type { RouteDeps } from '../route-deps.ts';
import { errorEnvelope, jsonObject, routeSchema } from '../route-schema.ts';
import { requestsPerMinute } from '../metrics.ts';
import { bearerToken } from '../plugins/guards.ts';

const HEALTH_DB_TIMEOUT_MS = 2_000;

export const systemRoutes: FastifyPluginAsync<RouteDeps> = async (app, { context, guards }) => {
  const health = z.object({
    status: z.enum(['ok', 'read-only', 'maintenance', 'degraded']),
    db: z.enum(['ok', 'unreachable']),
    version: z.string(),
    message: z.string().nullable().optional(),
    since: z.iso.datetime({ offset: true }).nullable().optional(),
  });
  const probe = {
    schema: routeSchema('system', {
      summary: 'Liveness: 200 serving (ok or read-only); 503 in maintenance or without the database',
      audience: 'public',
      ok: { 200: health, 503: health },
    }),
    config: { maintenanceExempt: true, probe: true },
  };
  const exempt = {
    schema: routeSchema('system', {
      summary: "The app's remote config: maintenance, banner, cache epochs, minimum version",
      audience: 'public',
      ok: { 200: jsonObject },
    }),
    config: { maintenanceExempt: true },
  };

  app.get('/health', probe, async (_request, reply) => {
    const { maintenance } = context.appState.current;
    const db = await databaseAnswers(context);
    if (maintenance.enabled && maintenance.mode === 'read-only') {
      // Reads are served, so the instance stays in the load balancer: 200, saying read-only.
      return { status: 'read-only', message: maintenance.message, since: maintenance.since, db: db ? 'ok' : 'unreachable', version: context.version };
    }
    if (maintenance.enabled) {
      return reply
        .status(503)
        .header('retry-after', '120')
        .send({
          status: 'maintenance',
          message: maintenance.message,
          since: maintenance.since,
          db: db ? 'ok' : 'unreachable',
          version: context.version,
        });
    }
    if (!db) return reply.status(503).send({ status: 'degraded', db: 'unreachable', version: context.version });
    return { status: 'ok', db: 'ok', version: context.version };
  });

  // The app's remote config: it learns of maintenance and cache clears here, so it must answer during maintenance.
  app.get('/config', exempt, async () => {
    const state = context.appState.current;
    return {
      // `enabled` means the app cannot be used at all; in read-only mode it can be read, so `enabled` is false and `mode` says read-only.
      maintenance: {
        enabled: state.maintenance.enabled && state.maintenance.mode === 'full',
        mode: state.maintenance.enabled ? state.maintenance.mode : 'off',
        message: state.maintenance.message,
      },
      readOnly: state.maintenance.enabled && state.maintenance.mode === 'read-only',
      // An announced maintenance window (or any operator notice), until it runs out.
      banner:
        state.banner && (state.banner.until === null || state.banner.until.getTime() > Date.now())
          ? { message: state.banner.message, until: state.banner.until }
          : null,
      // Per-user epochs are private; this route is public.
      cacheEpochs: Object.fromEntries(Object.entries(state.cacheEpochs).filter(([scope]) => !scope.startsWith('user:'))),
      minimumAppVersion: state.minimumAppVersion,
    };
  });

  /**
   * /metrics stays admin-only: it tells anyone how much traffic the service has and how it is
   * failing, and /health is the public liveness check. The runbook's T+1 h
   * `watch -n 60 'curl …/metrics'` sends no token, so a call without one is told how to watch.
   */
  const requireAdminForMetrics = async (request: FastifyRequest): Promise<void> => {
    try {
      await guards.requireAdmin(request);
    } catch (error) {
      if (isShipError(error) && error.code === 'SHIP_ERR_FORBIDDEN' && bearerToken(request) === undefined) {
        throw new ShipError(
          'SHIP_ERR_FORBIDDEN',
          '/metrics is for operators: send the admin token (curl -H "Authorization: Bearer $ADMIN_TOKEN" …/metrics). To watch it after a maintenance window run `shipshape maintenance monitor --for 1h`, or `shipshape health --watch 60s`; GET /health needs no token.',
        );
      }
      throw error;
    }
  };
  const metricsOnly = { config: probe.config, preHandler: [requireAdminForMetrics] };
  const metrics = z.object({
    activeUsers: z.number().int(),
    requestsPerMinute: z.number(),
    errorRate: z.number(),
    avgResponseTime: z.number(),
    p95ResponseTime: z.number(),
    windowSeconds: z.number(),
    instances: z.number().int(),
    byAppVersion: z
      .array(z.object({ version: z.string(), requests: z.number().int(), errors: z.number().int(), errorRate: z.number() }))
      .describe('The same window by the X-App-Version the app sent'),
  });

  app.get(
    '/metrics',
    {
      ...metricsOnly,
      schema: routeSchema('system', {
        summary: 'Request rate, error rate and latency over the last 5 minutes, every instance (Prometheus text for Accept: text/plain)',
        audience: 'admin',
        ok: { 200: metrics },
      }),
    },
    async (request, reply) => {
      if (request.headers.accept?.includes('text/plain')) return sendPrometheus(reply);
      const deployment = await deploymentMetrics();
      return {
        activeUsers: await countActiveUsers(context.database.pool),
        requestsPerMinute: requestsPerMinute(deployment),
        errorRate: deployment.errorRate,
        avgResponseTime: deployment.avgMs,
        p95ResponseTime: deployment.p95Ms,
        windowSeconds: deployment.windowMs / 1000,
        instances: deployment.instances,
        // Requests and 5xx per app version (the app sends X-App-Version), same window: what the release gates compare.
        byAppVersion: (await readVersionMetrics(context.database.pool, METRICS_WINDOW_MS)).map((v) => ({
          version: v.version,
          requests: v.requests,
          errors: v.errors,
          errorRate: v.errorRate,
        })),
      };
    },
  );

  app.get(
    '/metrics/prometheus',
    {
      ...metricsOnly,
      schema: {
        tags: ['system'],
        summary: 'The same figures in the Prometheus text exposition format',
        security: [{ adminToken: [] }],
        response: {
          200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: z.string() } } },
          '4xx': errorEnvelope,
          '5xx': errorEnvelope,
        },
      },
    },
    async (_request, reply) => sendPrometheus(reply),
  );

  async function deploymentMetrics(): Promise<DeploymentMetrics> {
    const { pool } = context.database;
    await context.metrics
      .flush(pool)
      .catch((error: unknown) =>
        context.logger.warn({ err: describeError(error) }, 'request metrics could not be flushed; /metrics shows what other flushes wrote'),
      );
    return readDeploymentMetrics(pool);
  }

  async function sendPrometheus(reply: FastifyReply) {
    const activeUsers = await countActiveUsers(context.database.pool);
    const deployment = await deploymentMetrics();
    return reply
      .type('text/plain; version=0.0.4; charset=utf-8')
      .send(context.metrics.prometheus({ activeUsers, maintenance: context.appState.current.maintenance.enabled, deployment }));
  }
};

async function databaseAnswers(context: ApiContext): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      context.database.pool.query('SELECT 1'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), HEALTH_DB_TIMEOUT_MS);
      }),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
