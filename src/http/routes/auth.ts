/**
 * /auth: register, log in and out, reset a forgotten password.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { confirmPasswordReset, login, register, requestPasswordReset } from '../../domain/auth.ts';
import { recordAudit } from '../../domain/audit.ts';
import { revokeSession } from '../../domain/sessions.ts';
import type { ApiContext } from '../context.ts';
import { attemptLimiter, bodyEmailOrIp } from '../plugins/attempt-limits.ts';
import { currentUser, type Guards } from '../plugins/guards.ts';
import { email, password } from '../schemas.ts';
import { parseInput } from '../validation.ts';

const credentials = z.strictObject({ email, password: z.string().min(1, 'is required').max(256) });
const registration = z.strictObject({ email, password, displayName: z.string().trim().min(1).max(200).optional() });
const resetRequest = z.strictObject({ email });
const resetConfirm = z.strictObject({ token: z.string().min(20, 'is not a reset token').max(200), password });

/** Limits per client address and per account; both must pass. */
const LIMITS = {
  login: { perIp: { max: 30, timeWindow: 60_000 }, perAccount: { max: 10, timeWindow: 15 * 60_000 } },
  passwordReset: { perIp: { max: 10, timeWindow: 60_000 }, perAccount: { max: 3, timeWindow: 60 * 60_000 } },
} as const;

const clientOf = (request: FastifyRequest) => ({ ip: request.ip, userAgent: request.headers['user-agent'] });

export function authRoutes(app: FastifyInstance, context: ApiContext, guards: Guards): void {
  const { pool } = context.database;
  const limiter = (name: keyof typeof LIMITS) => attemptLimiter(app, name, LIMITS[name], bodyEmailOrIp);

  app.post('/auth/register', { config: { input: { body: registration } }, preHandler: limiter('login') }, async (request, reply) => {
    const input = parseInput(registration, request.body, 'body');
    const result = await register(pool, input, clientOf(request), context.config.sessionTtlHours);
    return reply.status(201).send({ token: result.token, expiresAt: result.session.expiresAt, user: result.user });
  });

  app.post('/auth/login', { config: { input: { body: credentials } }, preHandler: limiter('login') }, async (request) => {
    const input = parseInput(credentials, request.body, 'body');
    const result = await login(pool, input, clientOf(request), context.config.sessionTtlHours);
    return { token: result.token, expiresAt: result.session.expiresAt, user: result.user };
  });

  app.post('/auth/logout', { preHandler: [guards.requireUser] }, async (request, reply) => {
    const { session, user } = currentUser(request);
    await revokeSession(pool, session.id);
    await recordAudit(pool, { actor: `user:${user.id}`, action: 'auth.logout', userId: user.id, ip: request.ip });
    return reply.status(204).send();
  });

  // Always 202, whether or not the account exists: the answer must not reveal who has an account.
  app.post('/auth/password-reset', { config: { input: { body: resetRequest } }, preHandler: limiter('passwordReset') }, async (request, reply) => {
    const input = parseInput(resetRequest, request.body, 'body');
    await requestPasswordReset(pool, context.mailer, context.logger, {
      email: input.email,
      ttlMinutes: context.config.passwordResetTtlMinutes,
      publicUrl: context.config.publicUrl,
      requestedBy: 'anonymous',
      ip: request.ip,
    });
    return reply.status(202).send({ status: 'accepted', message: 'If an account exists for this email, a reset link is on its way.' });
  });

  app.post('/auth/password-reset/confirm', { config: { input: { body: resetConfirm } }, preHandler: limiter('passwordReset') }, async (request, reply) => {
    const input = parseInput(resetConfirm, request.body, 'body');
    await confirmPasswordReset(pool, input, request.ip);
    return reply.status(204).send();
  });
}
