/**
 * Clearing caches (runbook: Clear App Cache). A scope's epoch is bumped in the database: apps
 * read it from `GET /config` and drop their local caches on next open (the runbook's
 * remote-config approach), and the server cache keys on it, so every instance stops using
 * entries of that scope as soon as it hears of the change. Callers then flush the server
 * cache's store for the scope, which frees the memory at once.
 */
import { withTransaction, type Pool } from '../db/pool.ts';
import { ShipError } from '../errors.ts';
import { bumpCacheEpoch } from './app-state.ts';
import { recordAudit } from './audit.ts';
import { findUserByEmail } from './users.ts';

export const namedCacheScopes = ['all', 'tasks', 'preferences'] as const;

export interface CacheClearResult {
  /** As asked: `all`, `tasks`, `preferences` or `user:<email>`. */
  readonly scope: string;
  /** As stored: a user's scope is keyed by id, so no address sits in shared state. */
  readonly storedScope: string;
  readonly epoch: number;
}

/** Checks the form of a scope; throws SHIP_ERR_VALIDATION with the allowed forms. */
export function parseCacheScope(scope: string): string {
  const trimmed = scope.trim();
  if ((namedCacheScopes as readonly string[]).includes(trimmed)) return trimmed;
  if (/^user:[^\s@]+@[^\s@]+$/.test(trimmed) && trimmed.length <= 325) return trimmed;
  throw new ShipError('SHIP_ERR_VALIDATION', `scope: "${scope.slice(0, 80)}" is not a cache scope. Use all, tasks, preferences or user:<email>.`);
}

/** Bumps the scope's epoch and audits it, in one transaction. */
export async function clearCacheScope(pool: Pool, request: { scope: string; actor: string; ip?: string | undefined }): Promise<CacheClearResult> {
  const scope = parseCacheScope(request.scope);
  return withTransaction(pool, async (client) => {
    let storedScope = scope;
    if (scope.startsWith('user:')) {
      const user = await findUserByEmail(client, scope.slice('user:'.length));
      if (!user) throw new ShipError('SHIP_ERR_NOT_FOUND', `No account has the email in scope "${scope}". Check the address.`);
      storedScope = `user:${user.id}`;
    }
    const epoch = await bumpCacheEpoch(client, storedScope, request.actor);
    await recordAudit(client, { actor: request.actor, action: 'admin.cache.cleared', ip: request.ip, details: { scope: storedScope, epoch } });
    return { scope, storedScope, epoch };
  });
}
