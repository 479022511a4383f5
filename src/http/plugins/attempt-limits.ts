/**
 * Rate limits for routes that check a password or send mail: per client address and per
 * account, and both must pass, so neither one address trying many accounts nor many
 * addresses trying one account gets far. A refusal is SHIP_ERR_RATE_LIMITED with Retry-After.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ShipError } from '../../errors.ts';

export interface AttemptLimits {
  readonly perIp: { readonly max: number; readonly timeWindow: number };
  readonly perAccount: { readonly max: number; readonly timeWindow: number };
}

/** A preHandler enforcing `limits` on the route; `name` keeps its counters apart from other routes'. */
export function attemptLimiter(
  app: FastifyInstance,
  name: string,
  limits: AttemptLimits,
  account: (request: FastifyRequest) => string,
): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const checks = [
    app.createRateLimit({ ...limits.perIp, keyGenerator: (request) => `${name}:ip:${request.ip}` }),
    // Hashed: the counters (in Redis when there is one) must not hold email addresses.
    app.createRateLimit({ ...limits.perAccount, keyGenerator: (request) => `${name}:account:${digest(account(request))}` }),
  ];
  return async (request, reply) => {
    for (const check of checks) {
      const limit = await check(request);
      if (!limit.isAllowed && limit.isExceeded) {
        reply.header('retry-after', String(limit.ttlInSeconds));
        throw new ShipError('SHIP_ERR_RATE_LIMITED', `Too many attempts. Retry in ${limit.ttlInSeconds} seconds.`);
      }
    }
  };
}

/** The account a request names: the email in its body, normalised; its client address when there is none. */
export function bodyEmailOrIp(request: FastifyRequest): string {
  const body: unknown = request.body;
  return typeof body === 'object' && body !== null && 'email' in body && typeof body.email === 'string' ? body.email.trim().toLowerCase() : request.ip;
}

function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 22);
}
