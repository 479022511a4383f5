/**
 * /admin: what the runbook's procedures call with the admin token. Every action is audited.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { switchMaintenance } from '../../domain/maintenance-switch.ts';
import { clearCacheScope } from '../../domain/cache-clear.ts';
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

export function adminRoutes(app: FastifyInstance, context: ApiContext, guards: Guards): void {
  const { pool } = context.database;
  const admin = (input: RouteInput) => ({ config: { maintenanceExempt: true, input }, preHandler: [guards.requireAdmin] });

  app.post('/admin/maintenance', admin({ body: maintenanceChange }), async (request) => {
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
