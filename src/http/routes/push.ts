/**
 * Push notifications: the app registers its Expo push token for the signed-in user
 * (`/me/devices`); operators send to everyone (`/admin/notifications`, runbook: Emergency App
 * Disable, step 5). A send is a recorded job that runs in the background; its progress is
 * at `GET /admin/notifications/:id`.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { recordAudit } from '../../domain/audit.ts';
import { EXPO_PUSH_TOKEN_PATTERN, platforms, registerDevice, unregisterDevice } from '../../domain/devices.ts';
import { createNotificationJob, getNotificationJob, priorities } from '../../domain/notifications.ts';
import { ShipError } from '../../errors.ts';
import type { ApiContext } from '../context.ts';
import { currentUser, type Guards } from '../plugins/guards.ts';
import { notificationData, uuid } from '../schemas.ts';
import { parseInput, type RouteInput } from '../validation.ts';

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
export function deviceRoutes(app: FastifyInstance, context: ApiContext, guards: Guards): void {
  const { pool } = context.database;
  const signedIn = { preHandler: [guards.requireUser] };

  app.post('/me/devices', { ...signedIn, config: { input: { body: newDevice } } }, async (request, reply) => {
    const input = parseInput(newDevice, request.body, 'body');
    return reply.status(201).send(await registerDevice(pool, currentUser(request).user.id, input));
  });

  app.delete('/me/devices/:token', { ...signedIn, config: { input: { params: deviceParams } } }, async (request, reply) => {
    const { token } = parseInput(deviceParams, request.params, 'params');
    await unregisterDevice(pool, currentUser(request).user.id, token);
    return reply.status(204).send();
  });
}

/** The operators' side: send to everyone, and follow a send's progress. */
export function pushSendRoutes(app: FastifyInstance, context: ApiContext, guards: Guards): void {
  const { pool } = context.database;
  const admin = (input: RouteInput) => ({ config: { maintenanceExempt: true, input }, preHandler: [guards.requireAdmin] });

  app.post('/admin/notifications/send', admin({ body: notification }), async (request, reply) => {
    const input = parseInput(notification, request.body, 'body');
    const { job, created } = await createNotificationJob(pool, { ...input, requestedBy: 'admin-api', idempotencyKey: idempotencyKey(request.headers['idempotency-key']) });
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
  });

  app.get('/admin/notifications/:id', admin({ params: jobParams }), async (request) => {
    const { id } = parseInput(jobParams, request.params, 'params');
    return { job: await getNotificationJob(pool, id) };
  });
}

function idempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || header.length === 0 || header.length > 200) {
    throw new ShipError('SHIP_ERR_VALIDATION', 'header Idempotency-Key: send one key of 1-200 characters, the same for every retry of one send.');
  }
  return header;
}
