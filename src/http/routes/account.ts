/**
 * The user's control over their account: signed-in sessions (list, end one, end all) and the
 * GDPR rights — a copy of their data (`GET /me/export`), erasure (`DELETE /me`, after a grace
 * period) and changing their mind (`POST /me/restore`).
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { shipshapeProfile } from '../../app-profile.ts';
import { restoreAccount } from '../../domain/account-restore.ts';
import { recordAudit } from '../../domain/audit.ts';
import { requestDeletion, SELF_SERVICE_IDENTITY } from '../../domain/deletion-requests.ts';
import { verifyPassword } from '../../domain/secrets.ts';
import { listLiveSessions, revokeOwnSession } from '../../domain/session-list.ts';
import { revokeAllSessions } from '../../domain/sessions.ts';
import { EXPORT_FORMAT, readUserDataJson } from '../../domain/user-export.ts';
import { findUserForLogin } from '../../domain/users.ts';
import { ShipError, describeError } from '../../errors.ts';
import { attemptLimiter } from '../plugins/attempt-limits.ts';
import { currentUser } from '../plugins/guards.ts';
import type { RouteDeps } from '../route-deps.ts';
import { jsonObject, routeSchema, type RouteDoc } from '../route-schema.ts';
import { email, sessionGrant, uuid } from '../schemas.ts';
import { parseInput } from '../validation.ts';

const deletionConfirmation = z.strictObject({ password: z.string().min(1, 'is required: confirm the deletion with your password').max(256) });
const credentials = z.strictObject({ email, password: z.string().min(1, 'is required').max(256) });
const sessionParams = z.strictObject({ id: uuid });

/** Same budgets as login: these routes check a password too. */
const LIMITS = {
  perIp: { max: 30, timeWindow: 60_000 },
  perAccount: { max: 10, timeWindow: 15 * 60_000 },
} as const;

export const accountRoutes: FastifyPluginAsync<RouteDeps> = async (app, { context, guards }) => {
  const { pool } = context.database;
  const usersTable = shipshapeProfile.users;
  const signedIn = (route: Omit<RouteDoc, 'audience'>) => ({
    schema: routeSchema('account', { ...route, audience: 'user' }),
    preHandler: [guards.requireUser],
  });
  const limits = { deleteMe: attemptLimiter(app, 'delete-me', LIMITS), restore: attemptLimiter(app, 'restore', LIMITS) };

  app.get('/me/sessions', signedIn({ summary: 'Your signed-in sessions', ok: { 200: z.object({ sessions: z.array(jsonObject) }) } }), async (request) => {
    const { user, session } = currentUser(request);
    const sessions = await listLiveSessions(pool, user.id);
    return { sessions: sessions.map((entry) => ({ ...entry, current: entry.id === session.id })) };
  });

  app.delete(
    '/me/sessions/:id',
    signedIn({ summary: 'End one of your sessions', input: { params: sessionParams }, ok: { 204: null } }),
    async (request, reply) => {
      const { id } = parseInput(sessionParams, request.params, 'params');
      const { user } = currentUser(request);
      await revokeOwnSession(pool, user.id, id);
      context.live.sessions.forgetSession(id);
      await recordAudit(pool, {
        actor: `user:${user.id}`,
        action: 'auth.sessions.revoked',
        userId: user.id,
        ip: request.ip,
        details: { sessionId: id, count: 1 },
      });
      return reply.status(204).send();
    },
  );

  app.post('/auth/logout-all', signedIn({ summary: 'Sign out everywhere', ok: { 200: z.object({ revoked: z.number().int() }) } }), async (request) => {
    const { user } = currentUser(request);
    const revoked = await revokeAllSessions(pool, user.id);
    context.live.sessions.forgetUser(user.id);
    await recordAudit(pool, {
      actor: `user:${user.id}`,
      action: 'auth.sessions.revoked',
      userId: user.id,
      ip: request.ip,
      details: { count: revoked, reason: 'logout-all' },
    });
    return { revoked };
  });

  app.get('/me/export', signedIn({ summary: 'A copy of all your data (GDPR)', ok: { 200: jsonObject } }), async (request) => {
    const { user } = currentUser(request);
    const tables = await readUserDataJson(pool, usersTable, user.id);
    await recordAudit(pool, { actor: `user:${user.id}`, action: 'gdpr.export.downloaded', userId: user.id, ip: request.ip });
    return { format: EXPORT_FORMAT, exportedAt: new Date().toISOString(), userId: user.id, tables };
  });

  app.delete(
    '/me',
    signedIn({ summary: 'Delete your account after the grace period (GDPR)', input: { body: deletionConfirmation }, ok: { 202: jsonObject } }),
    async (request, reply) => {
      const { password } = parseInput(deletionConfirmation, request.body, 'body');
      const { user } = currentUser(request);
      await limits.deleteMe.check(request, reply, user.id);
      const found = await findUserForLogin(pool, user.email);
      if (!found || !(await verifyPassword(found.passwordHash, password))) {
        throw new ShipError('SHIP_ERR_INVALID_CREDENTIALS', 'The password is incorrect; the account was not scheduled for deletion.');
      }
      const { request: pending } = await requestDeletion(pool, {
        userId: user.id,
        requestedBy: `user:${user.id}`,
        graceDays: context.config.deletionGraceDays,
        identityReference: SELF_SERVICE_IDENTITY,
        ip: request.ip,
      });
      context.live.sessions.forgetUser(user.id);
      const dueAt = pending.dueAt.toISOString();
      const restoreHow = `To cancel, send POST /me/restore with your email and password before ${dueAt}.`;
      // Sent in the background: the request is recorded whether or not the mail goes out.
      context.mailer
        .send({
          to: user.email,
          subject: 'Your account is scheduled for deletion',
          text: `Your account ${user.email} and all its data will be erased on ${dueAt}. You have been signed out everywhere.\n\nIf you change your mind, sign in to the app and choose "Restore account" before then. ${restoreHow}`,
          html: `<p>Your account and all its data will be erased on ${dueAt}. You have been signed out everywhere.</p><p>If you change your mind, sign in to the app and choose "Restore account" before then.</p>`,
        })
        .catch((error: unknown) => context.logger.error({ err: describeError(error), userId: user.id }, 'deletion confirmation email could not be sent'));
      return reply.status(202).send({
        status: 'scheduled',
        deletionDueAt: dueAt,
        message: `Your account is scheduled for deletion and you have been signed out everywhere. ${restoreHow}`,
      });
    },
  );

  app.post(
    '/me/restore',
    {
      schema: routeSchema('account', {
        summary: 'Cancel a pending account deletion and sign in',
        audience: 'public',
        input: { body: credentials },
        ok: { 200: sessionGrant.extend({ status: z.literal('restored') }) },
      }),
    },
    async (request, reply) => {
      const input = parseInput(credentials, request.body, 'body');
      await limits.restore.check(request, reply, input.email);
      const result = await restoreAccount(pool, input, { ip: request.ip, userAgent: request.headers['user-agent'] }, context.config.sessionTtlHours);
      return { status: 'restored', token: result.token, expiresAt: result.session.expiresAt, user: result.user };
    },
  );
};
