/**
 * /admin: what the runbook's procedures call with the admin token. Every action is audited.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { recordAudit } from '../../domain/audit.ts';
import { setMaintenance } from '../../domain/app-state.ts';
import { clearCacheScope } from '../../domain/cache-clear.ts';
import { getRelease, listReleases, releaseJson } from '../../domain/releases.ts';
import type { ApiContext } from '../context.ts';
import type { Guards } from '../plugins/guards.ts';
import { parseInput, type RouteInput } from '../validation.ts';

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

export function adminRoutes(app: FastifyInstance, context: ApiContext, guards: Guards): void {
  const { pool } = context.database;
  const admin = (input: RouteInput) => ({ config: { maintenanceExempt: true, input }, preHandler: [guards.requireAdmin] });

  app.post('/admin/maintenance', admin({ body: maintenanceChange }), async (request) => {
    const input = parseInput(maintenanceChange, request.body, 'body');
    const { previous, current } = await setMaintenance(pool, { enabled: input.enabled, message: input.message, setBy: 'admin-api', mode: input.mode });
    await recordAudit(pool, {
      actor: 'admin-api',
      action: input.enabled ? 'admin.maintenance.enabled' : 'admin.maintenance.disabled',
      ip: request.ip,
      details: { message: current.message, mode: current.mode, wasEnabled: previous.enabled },
    });
    await context.appState.refresh();
    await context.live.feeds.announce();
    return { maintenance: current, previous };
  });

  // Release records (shipshape release list/show): read-only here; releases change through the procedures.
  app.get('/admin/releases', admin({ query: releaseList }), async (request) => {
    const { limit } = parseInput(releaseList, request.query, 'query');
    return { releases: (await listReleases(pool, limit)).map(releaseJson) };
  });

  app.get('/admin/releases/:version', admin({ params: releaseParams }), async (request) => {
    const { version } = parseInput(releaseParams, request.params, 'params');
    return { release: releaseJson(await getRelease(pool, version)) };
  });

  app.post('/admin/cache/clear', admin({ body: cacheClear }), async (request) => {
    const { scope: requested } = parseInput(cacheClear, request.body, 'body');
    const { scope, storedScope, epoch } = await clearCacheScope(pool, { scope: requested, actor: 'admin-api', ip: request.ip });
    // Frees the scope's entries (in Redis, for every instance); the new epoch then makes any
    // entry stored meanwhile by a read that began before the clear unreachable.
    const flushed = await context.live.cache.flush(storedScope);
    await context.appState.refresh();
    await context.live.feeds.announce();
    return { scope, epoch, flushed };
  });
}
