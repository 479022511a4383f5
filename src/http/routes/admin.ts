/**
 * /admin: what the runbook's procedures call with the admin token. Every action is audited.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { recordAudit } from '../../domain/audit.ts';
import { bumpCacheEpoch, setMaintenance } from '../../domain/app-state.ts';
import { findUserByEmail } from '../../domain/users.ts';
import { ShipError } from '../../errors.ts';
import type { ApiContext } from '../context.ts';
import type { Guards } from '../plugins/guards.ts';
import { parseInput } from '../validation.ts';

const maintenanceChange = z.strictObject({
  enabled: z.boolean(),
  message: z.string().trim().min(1).max(500).optional(),
});
const cacheScope = z.union([z.enum(['all', 'tasks', 'preferences']), z.string().regex(/^user:.{3,320}$/, 'must be all, tasks, preferences or user:<email>')]);
const cacheClear = z.strictObject({ scope: cacheScope });

export function adminRoutes(app: FastifyInstance, context: ApiContext, guards: Guards): void {
  const { pool } = context.database;
  const admin = { config: { maintenanceExempt: true }, preHandler: [guards.requireAdmin] };

  app.post('/admin/maintenance', admin, async (request) => {
    const input = parseInput(maintenanceChange, request.body, 'body');
    const { previous, current } = await setMaintenance(pool, { enabled: input.enabled, message: input.message, setBy: 'admin-api' });
    await recordAudit(pool, {
      actor: 'admin-api',
      action: input.enabled ? 'admin.maintenance.enabled' : 'admin.maintenance.disabled',
      ip: request.ip,
      details: { message: current.message, wasEnabled: previous.enabled },
    });
    await context.appState.refresh();
    return { maintenance: current, previous };
  });

  app.post('/admin/cache/clear', admin, async (request) => {
    const { scope: requested } = parseInput(cacheClear, request.body, 'body');
    const scope = await resolveScope(requested);
    const epoch = await bumpCacheEpoch(pool, scope, 'admin-api');
    await recordAudit(pool, { actor: 'admin-api', action: 'admin.cache.cleared', ip: request.ip, details: { scope, epoch } });
    await context.appState.refresh();
    return { scope: requested, epoch };
  });

  // A user's scope is keyed by id, never by email, so no address ever sits in shared state.
  async function resolveScope(scope: string): Promise<string> {
    if (!scope.startsWith('user:')) return scope;
    const user = await findUserByEmail(pool, scope.slice('user:'.length));
    if (!user) throw new ShipError('SHIP_ERR_NOT_FOUND', `No account has the email in scope "${scope}". Check the address.`);
    return `user:${user.id}`;
  }
}
