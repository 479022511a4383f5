/**
 * /admin: what the runbook's procedures call with the admin token. Every action is audited.
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { switchMaintenance } from '../../domain/maintenance-switch.ts';
import { clearCacheScope } from '../../domain/cache-clear.ts';
import { getRelease, listReleases, releaseJson } from '../../domain/releases.ts';
import type { RouteDeps } from '../route-deps.ts';
import { jsonObject, routeSchema, type RouteDoc } from '../route-schema.ts';
import { parseInput } from '../validation.ts';

const maintenanceChange = z.strictObject({
  enabled: z.boolean(),
  message: z.string().trim().min(1).max(500).optional(),
  /** 'read-only': reads are served, writes answer 503. Default 'full'. */
  mode: z.enum(['full', 'read-only']).optional(),
});
const cacheScope = z.union([z.enum(['all', 'tasks', 'preferences']), z.string().regex(/^user:.{3,320}$/, 'must be all, tasks, preferences or user:<email>')]);
const cacheClear = z.strictObject({ scope: cacheScope });
const releaseList = z.strictObject({ limit: z.coerce.number().int().min(1).max(500).default(20) });
const releaseParams = z.strictObject({ version: z.string().regex(/^\d+\.\d+\.\d+$/, 'must be a version like 2.4.1') });

export const adminRoutes: FastifyPluginAsync<RouteDeps> = async (app, { context, guards }) => {
  const { pool } = context.database;
  const admin = (route: Omit<RouteDoc, 'audience'>) => ({
    schema: routeSchema('admin', { ...route, audience: 'admin' }),
    config: { maintenanceExempt: true },
    preHandler: [guards.requireAdmin],
  });

  app.post(
    '/admin/maintenance',
    admin({
      summary: 'Turn maintenance mode (full or read-only) on or off',
      input: { body: maintenanceChange },
      ok: { 200: z.object({ maintenance: jsonObject, previous: jsonObject }) },
    }),
    async (request) => {
      const input = parseInput(maintenanceChange, request.body, 'body');
      const { previous, current } = await switchMaintenance(
        pool,
        { enabled: input.enabled, message: input.message, mode: input.mode, owner: { kind: 'api', name: 'admin-api' }, ip: request.ip },
        async () => {
          await context.appState.refresh();
          await context.live.feeds.announce();
        },
      );
      return { maintenance: current, previous };
    },
  );

  // Release records (shipshape release list/show): read-only here; releases change through the procedures.
  app.get('/admin/releases', admin({ summary: 'Release records, newest first', input: { query: releaseList }, ok: { 200: jsonObject } }), async (request) => {
    const { limit } = parseInput(releaseList, request.query, 'query');
    return { releases: (await listReleases(pool, limit)).map(releaseJson) };
  });

  app.get(
    '/admin/releases/:version',
    admin({ summary: 'One release record: builds, submissions, rollout per platform, gates', input: { params: releaseParams }, ok: { 200: jsonObject } }),
    async (request) => {
      const { version } = parseInput(releaseParams, request.params, 'params');
      return { release: releaseJson(await getRelease(pool, version)) };
    },
  );

  app.post(
    '/admin/cache/clear',
    admin({
      summary: 'Clear the app cache for a scope',
      input: { body: cacheClear },
      ok: { 200: z.object({ scope: z.string(), epoch: z.number().int(), flushed: z.number().int() }) },
    }),
    async (request) => {
      const { scope: requested } = parseInput(cacheClear, request.body, 'body');
      const { scope, storedScope, epoch } = await clearCacheScope(pool, { scope: requested, actor: 'admin-api', ip: request.ip });
      // Frees the scope's entries (in Redis, for every instance); the new epoch then makes any
      // entry stored meanwhile by a read that began before the clear unreachable.
      const flushed = await context.live.cache.flush(storedScope);
      await context.appState.refresh();
      await context.live.feeds.announce();
      return { scope, epoch, flushed };
    },
  );
};
