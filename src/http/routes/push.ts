/**
 * Push notifications: the app registers its Expo push token for the signed-in user
 * (`/me/devices`); operators send to everyone (`/admin/notifications`, runbook: Emergency App
 * Disable, step 5). A send is a recorded job that runs in the background; its progress is
 * at `GET /admin/notifications/:id`.
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { recordAudit } from '../../domain/audit.ts';
import { EXPO_PUSH_TOKEN_PATTERN, platforms, registerDevice, unregisterDevice } from '../../domain/devices.ts';
import { createNotificationJob, getNotificationJob, priorities } from '../../domain/notifications.ts';
import { ShipError } from '../../errors.ts';
import { currentUser } from '../plugins/guards.ts';
import type { RouteDeps } from '../route-deps.ts';
import { jsonObject, routeSchema, type RouteDoc } from '../route-schema.ts';
import { notificationData, uuid } from '../schemas.ts';
import { parseInput } from '../validation.ts';

const pushToken = z.string().regex(EXPO_PUSH_TOKEN_PATTERN, 'must be an Expo push token like ExponentPushToken[xxxxxxxx]');
const newDevice = z.strictObject({ token: pushToken, platform: z.enum(platforms) });
const deviceParams = z.strictObject({ token: pushToken });
const notification = z.strictObject({
  title: z.string().trim().min(1).max(200),
  body: z.string().trim().min(1).max(2000),
  priority: z.enum(priorities).optional(),
  data: notificationData.optional(),
});
const jobParams = z.strictObject({ id: uuid });

/** The app's side: a signed-in user's devices. */
export const deviceRoutes: FastifyPluginAsync<RouteDeps> = async (app, { context, guards }) => {
  const { pool } = context.database;
  const signedIn = (route: Omit<RouteDoc, 'audience'>) => ({
    schema: routeSchema('devices', { ...route, audience: 'user' }),
    preHandler: [guards.requireUser],
  });

  app.post(
    '/me/devices',
    signedIn({ summary: 'Register this device for push notifications', input: { body: newDevice }, ok: { 201: jsonObject } }),
    async (request, reply) => {
      const input = parseInput(newDevice, request.body, 'body');
      return reply.status(201).send(await registerDevice(pool, currentUser(request).user.id, input));
    },
  );

  app.delete(
    '/me/devices/:token',
    signedIn({ summary: 'Stop push notifications to this device', input: { params: deviceParams }, ok: { 204: null } }),
    async (request, reply) => {
      const { token } = parseInput(deviceParams, request.params, 'params');
      await unregisterDevice(pool, currentUser(request).user.id, token);
      return reply.status(204).send();
    },
  );
};

/** The operators' side: send to everyone, and follow a send's progress. */
export const pushSendRoutes: FastifyPluginAsync<RouteDeps> = async (app, { context, guards }) => {
  const { pool } = context.database;
  const admin = (route: Omit<RouteDoc, 'audience'>) => ({
    schema: routeSchema('notifications', { ...route, audience: 'admin' }),
    config: { maintenanceExempt: true },
    preHandler: [guards.requireAdmin],
  });

  app.post(
    '/admin/notifications/send',
    admin({
      summary: 'Send a push notification to every user (202 new job, 200 same Idempotency-Key)',
      input: { body: notification },
      ok: { 202: z.object({ job: jsonObject }), 200: z.object({ job: jsonObject }) },
    }),
    async (request, reply) => {
      const input = parseInput(notification, request.body, 'body');
      const { job, created } = await createNotificationJob(pool, {
        ...input,
        requestedBy: 'admin-api',
        idempotencyKey: idempotencyKey(request.headers['idempotency-key']),
      });
      if (created) {
        await recordAudit(pool, {
          actor: 'admin-api',
          action: 'admin.notifications.sent',
          ip: request.ip,
          details: { job: job.id, priority: job.priority, recipients: job.recipients },
        });
      }
      if (job.status === 'sending') context.live.notifications.submit(job.id);
      return reply
        .status(created ? 202 : 200)
        .header('location', `/admin/notifications/${job.id}`)
        .send({ job });
    },
  );

  app.get(
    '/admin/notifications/:id',
    admin({ summary: 'A push send and its progress', input: { params: jobParams }, ok: { 200: z.object({ job: jsonObject }) } }),
    async (request) => {
      const { id } = parseInput(jobParams, request.params, 'params');
      return { job: await getNotificationJob(pool, id) };
    },
  );
};

function idempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || header.length === 0 || header.length > 200) {
    throw new ShipError('SHIP_ERR_VALIDATION', 'header Idempotency-Key: send one key of 1-200 characters, the same for every retry of one send.');
  }
  return header;
}
