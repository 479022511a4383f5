/**
 * Rate limits for routes that check a password or send mail: per client address and per
 * account, and both must pass, so neither one address trying many accounts nor many
 * addresses trying one account gets far. A refusal is SHIP_ERR_RATE_LIMITED with Retry-After.
 *
 * A route checks after it has parsed its input, so only well-formed attempts count: a flood of
 * malformed requests neither spends a real user's budget nor pushes counters out of the
 * in-process store. The account is what the parsed input names (an email, a token), hashed:
 * counters — in Redis when there is one — never hold an address or a secret. On a single
 * instance without Redis the counters live in a bounded in-process store; the protections that
 * must not be evictable (the login back-off, the reset-email budget) are counted in the database.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ShipError } from '../../errors.ts';

export interface AttemptLimits {
  readonly perIp: { readonly max: number; readonly timeWindow: number };
  readonly perAccount: { readonly max: number; readonly timeWindow: number };
}

export interface AttemptLimiter {
  /** Counts one attempt on `account` from the request's address; throws SHIP_ERR_RATE_LIMITED past either limit. */
  check(request: FastifyRequest, reply: FastifyReply, account: string): Promise<void>;
}

/** A limiter enforcing `limits`; `name` keeps its counters apart from other routes'. */
export function attemptLimiter(app: FastifyInstance, name: string, limits: AttemptLimits): AttemptLimiter {
  const accounts = new WeakMap<FastifyRequest, string>();
  const checks = [
    app.createRateLimit({ ...limits.perIp, keyGenerator: (request) => `${name}:ip:${request.ip}` }),
    app.createRateLimit({ ...limits.perAccount, keyGenerator: (request) => `${name}:account:${accounts.get(request) ?? request.ip}` }),
  ];
  return {
    async check(request, reply, account) {
      // The maintenance run's smoke tests, let in by an admin token, must not fail on a budget app users spent.
      if (request.maintenanceBypass) return;
      accounts.set(request, digest(account.trim().toLowerCase()));
      for (const check of checks) {
        const limit = await check(request);
        if (!limit.isAllowed && limit.isExceeded) {
          reply.header('retry-after', String(limit.ttlInSeconds));
          throw new ShipError('SHIP_ERR_RATE_LIMITED', `Too many attempts. Retry in ${limit.ttlInSeconds} seconds.`);
        }
      }
    },
  };
}

function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 22);
}
