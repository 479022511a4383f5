/**
 * Request guards: who is calling (user session or admin token) and whether the app is
 * open (maintenance mode). Routes opt in with `preHandler: [requireUser]` and friends.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ShipError } from '../../errors.ts';
import { adminCheckError, verifyAdminToken } from '../../domain/admin-tokens.ts';
import { authenticateHash, type Authenticated, type SignIn } from '../../domain/sessions.ts';
import type { Queryable } from '../../db/pool.ts';
import type { ApiContext } from '../context.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The session behind the bearer token, set by `requireUser`. */
    auth: Authenticated | null;
    /** Set by the maintenance gate when an admin token let this request through maintenance. */
    maintenanceBypass: boolean;
  }
  interface FastifyContextConfig {
    /** Routes that keep answering during maintenance (health, config, admin). */
    maintenanceExempt?: boolean;
    /** Monitoring probes (/health, /metrics): answered, but not counted as app traffic in the metrics. */
    probe?: boolean;
  }
}

/** The signed-in user; only call after `requireUser` ran. */
export function currentUser(request: FastifyRequest): Authenticated {
  if (!request.auth) throw new ShipError('SHIP_ERR_UNAUTHENTICATED', 'Sign in first: send Authorization: Bearer <token> from /auth/login.');
  return request.auth;
}

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

export function createGuards(context: ApiContext) {
  /**
   * `requireUser` for a route that has the database do its own work for the user in the
   * sign-in statement (`signIn`, e.g. tasks.ts's `signInListingFirstPage`): one round trip
   * where signing in first costs two. `signIn` runs only when the session is not cached; its
   * answer is returned, or undefined when the session came from the cache and the route must
   * do that work itself.
   */
  const requireUserWith = async <Found extends SignIn>(
    request: FastifyRequest,
    signIn: (db: Queryable, tokenHash: Buffer) => Promise<Found | undefined>,
  ): Promise<Found | undefined> => {
    const token = bearerToken(request);
    if (!token) throw new ShipError('SHIP_ERR_UNAUTHENTICATED', 'Sign in first: send Authorization: Bearer <token> from /auth/login.');
    const found = await context.live.sessions.authenticate(context.database.pool, token, signIn);
    if (!found) throw new ShipError('SHIP_ERR_UNAUTHENTICATED', 'This session has expired or was signed out. Log in again.');
    request.auth = found.auth;
    // Only a sign-in read from the database carries the route's own work (not one from the session cache).
    return 'listVersion' in found ? found : undefined;
  };

  const requireUser = async (request: FastifyRequest): Promise<void> => {
    await requireUserWith(request, authenticateHash);
  };

  // ADMIN_TOKEN, or a token issued by a credential rotation (hashed in admin_tokens); see src/domain/admin-tokens.ts.
  const requireAdmin = async (request: FastifyRequest): Promise<void> => {
    const check = await verifyAdminToken(context.database.pool, bearerToken(request), context.config.adminToken);
    if (!check.ok) throw adminCheckError(check);
  };

  /** While maintenance is on, app routes answer 503 with the operator's message. */
  const maintenanceGate = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (request.routeOptions.config.maintenanceExempt) return;
    const { maintenance } = context.appState.current;
    if (!maintenance.enabled) return;
    // Read-only mode (a restore loading its backup beside the live database): reads are served.
    const reading = request.method === 'GET' || request.method === 'HEAD' || request.method === 'OPTIONS';
    if (maintenance.mode === 'read-only' && reading) return;
    // The maintenance run's smoke tests use the app before it reopens; only an admin token lets them in.
    const bypass = request.headers['x-maintenance-bypass'];
    if (typeof bypass === 'string' && (await verifyAdminToken(context.database.pool, bypass, context.config.adminToken)).ok) {
      request.maintenanceBypass = true;
      return;
    }
    reply.header('retry-after', '120');
    if (maintenance.mode === 'read-only')
      throw new ShipError(
        'SHIP_ERR_READ_ONLY',
        `${maintenance.message ?? 'Maintenance in progress.'} Until then the service is read-only: changes are not accepted.`,
      );
    throw new ShipError('SHIP_ERR_MAINTENANCE', maintenance.message ?? 'Maintenance in progress.');
  };

  return { requireUser, requireUserWith, requireAdmin, maintenanceGate };
}

export type Guards = ReturnType<typeof createGuards>;
