/**
 * /auth: register, log in and out, reset a forgotten password.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { describeError } from '../../errors.ts';
import { confirmPasswordReset, login, register, requestPasswordReset } from '../../domain/auth.ts';
import { recordAudit } from '../../domain/audit.ts';
import { revokeSession } from '../../domain/sessions.ts';
import { attemptLimiter } from '../plugins/attempt-limits.ts';
import { currentUser } from '../plugins/guards.ts';
import type { RouteDeps } from '../route-deps.ts';
import { routeSchema, type RouteDoc } from '../route-schema.ts';
import { email, password, sessionGrant } from '../schemas.ts';
import { parseInput } from '../validation.ts';

const credentials = z.strictObject({ email, password: z.string().min(1, 'is required').max(256) });
const registration = z.strictObject({ email, password, displayName: z.string().trim().min(1).max(200).optional() });
const resetRequest = z.strictObject({ email });
const resetConfirm = z.strictObject({ token: z.string().min(20, 'is not a reset token').max(200), password });

/**
 * Limits per client address and per account; both must pass. A reset confirmation's "account"
 * is its token: guessing one is hopeless, so its per-address limit only has to stop floods, and
 * is loose enough that one noisy client cannot lock out everyone behind the same address.
 */
export const LIMITS = {
  login: { perIp: { max: 30, timeWindow: 60_000 }, perAccount: { max: 10, timeWindow: 15 * 60_000 } },
  passwordReset: { perIp: { max: 10, timeWindow: 60_000 }, perAccount: { max: 3, timeWindow: 60 * 60_000 } },
  passwordResetConfirm: { perIp: { max: 60, timeWindow: 60_000 }, perAccount: { max: 5, timeWindow: 60 * 60_000 } },
} as const;

const clientOf = (request: FastifyRequest) => ({ ip: request.ip, userAgent: request.headers['user-agent'], duringMaintenance: request.maintenanceBypass });

export const authRoutes: FastifyPluginAsync<RouteDeps> = async (app, { context, guards }) => {
  const { pool } = context.database;
  const doc = (route: RouteDoc) => routeSchema('auth', route);
  const limits = {
    login: attemptLimiter(app, 'login', LIMITS.login),
    passwordReset: attemptLimiter(app, 'passwordReset', LIMITS.passwordReset),
    passwordResetConfirm: attemptLimiter(app, 'passwordResetConfirm', LIMITS.passwordResetConfirm),
  };

  app.post(
    '/auth/register',
    { schema: doc({ summary: 'Create an account and sign in', audience: 'public', input: { body: registration }, ok: { 201: sessionGrant } }) },
    async (request, reply) => {
      const input = parseInput(registration, request.body, 'body');
      await limits.login.check(request, reply, input.email);
      const result = await register(pool, input, clientOf(request), context.config.sessionTtlHours);
      return reply.status(201).send({ token: result.token, expiresAt: result.session.expiresAt, user: result.user });
    },
  );

  app.post(
    '/auth/login',
    { schema: doc({ summary: 'Sign in', audience: 'public', input: { body: credentials }, ok: { 200: sessionGrant } }) },
    async (request, reply) => {
      const input = parseInput(credentials, request.body, 'body');
      await limits.login.check(request, reply, input.email);
      const result = await login(pool, input, clientOf(request), context.config.sessionTtlHours);
      return { token: result.token, expiresAt: result.session.expiresAt, user: result.user };
    },
  );

  app.post(
    '/auth/logout',
    { schema: doc({ summary: 'Sign out this session', audience: 'user', ok: { 204: null } }), preHandler: [guards.requireUser] },
    async (request, reply) => {
      const { session, user } = currentUser(request);
      await revokeSession(pool, session.id);
      // Gone here at once; other instances drop it when the NOTIFY arrives (src/domain/session-cache.ts).
      context.live.sessions.forgetSession(session.id);
      await recordAudit(pool, { actor: `user:${user.id}`, action: 'auth.logout', userId: user.id, ip: request.ip });
      return reply.status(204).send();
    },
  );

  // Always 202, whether or not the account exists, and answered before any work is done: neither
  // the answer nor the time it takes may reveal who has an account. The work then runs in arrival
  // order, so of two requests for one account the newer link is the one that works, and a
  // closing server finishes it before it stops.
  let resets: Promise<void> = Promise.resolve();
  app.addHook('onClose', async () => resets);
  app.post(
    '/auth/password-reset',
    {
      schema: doc({
        summary: 'Email a password reset link (always 202: no account enumeration)',
        audience: 'public',
        input: { body: resetRequest },
        ok: { 202: z.object({ status: z.literal('accepted'), message: z.string() }) },
      }),
    },
    async (request, reply) => {
      const input = parseInput(resetRequest, request.body, 'body');
      await limits.passwordReset.check(request, reply, input.email);
      const reset = {
        email: input.email,
        ttlMinutes: context.config.passwordResetTtlMinutes,
        publicUrl: context.config.publicUrl,
        appResetUrl: context.config.appResetUrl,
        requestedBy: 'anonymous',
        ip: request.ip,
        emailsPerHour: LIMITS.passwordReset.perAccount.max,
      };
      resets = resets
        .then(() => requestPasswordReset(pool, context.mailer, context.logger, reset))
        .then(
          () => undefined,
          (error: unknown) => context.logger.error({ err: describeError(error) }, 'a password reset request could not be handled'),
        );
      return reply.status(202).send({ status: 'accepted', message: 'If an account exists for this email, a reset link is on its way.' });
    },
  );

  app.post(
    '/auth/password-reset/confirm',
    { schema: doc({ summary: 'Set a new password with an emailed reset token', audience: 'public', input: { body: resetConfirm }, ok: { 204: null } }) },
    async (request, reply) => {
      const input = parseInput(resetConfirm, request.body, 'body');
      await limits.passwordResetConfirm.check(request, reply, input.token);
      const userId = await confirmPasswordReset(pool, input, request.ip);
      context.live.sessions.forgetUser(userId);
      return reply.status(204).send();
    },
  );
};
