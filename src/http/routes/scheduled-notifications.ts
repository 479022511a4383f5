/**
 * Scheduled push notifications (runbook: Monthly Maintenance, T-72 hours, "Notify users"):
 *
 *   POST   /admin/notifications/schedule {"scheduledFor","title","body","priority"?,"data"?} → 201 {notification}
 *   GET    /admin/notifications[?status=pending|sent|partial|failed|cancelled|all&limit=50] → {notifications}
 *          (partial: some chunks failed; failed: none went out — each with the cause in `error`)
 *   DELETE /admin/notifications/:id → 200 {notification} (cancelled), 409 once it went out
 *
 * `scheduledFor` is an ISO 8601 time with an offset, in the future. Accepting one only writes a
 * row; a worker on any instance sends it when it is due (src/domain/scheduled-notifications.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { recordAudit } from '../../domain/audit.ts';
import { priorities } from '../../domain/notifications.ts';
import { cancelScheduledNotification, listNotifications, listStatuses, parseScheduledFor, scheduleNotification } from '../../domain/scheduled-notifications.ts';
import type { RouteDeps } from '../route-deps.ts';
import { jsonObject, routeSchema, type RouteDoc } from '../route-schema.ts';
import { notificationData, uuid } from '../schemas.ts';
import { parseInput } from '../validation.ts';

const newScheduled = z.strictObject({
  scheduledFor: z.string({ error: 'must be an ISO 8601 time with an offset, e.g. "2026-03-01T02:00:00-08:00"' }),
  title: z.string().trim().min(1).max(200),
  body: z.string().trim().min(1).max(2000),
  priority: z.enum(priorities).optional(),
  data: notificationData.optional(),
});
const listQuery = z.strictObject({
  status: z.enum(listStatuses).default('all'),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});
const idParams = z.strictObject({ id: uuid });

export const scheduledNotificationRoutes: FastifyPluginAsync<RouteDeps> = async (app, { context, guards }) => {
  const { pool } = context.database;
  const admin = (route: Omit<RouteDoc, 'audience'>) => ({
    schema: routeSchema('notifications', { ...route, audience: 'admin' }),
    config: { maintenanceExempt: true },
    preHandler: [guards.requireAdmin],
  });

  app.post(
    '/admin/notifications/schedule',
    admin({ summary: 'Schedule a push notification to every user', input: { body: newScheduled }, ok: { 201: z.object({ notification: jsonObject }) } }),
    async (request, reply) => {
      const input = parseInput(newScheduled, request.body, 'body');
      const scheduledFor = parseScheduledFor(input.scheduledFor, new Date(), 'body.scheduledFor');
      const { notification } = await scheduleNotification(pool, { ...input, scheduledFor, requestedBy: 'admin-api' });
      await recordAudit(pool, {
        actor: 'admin-api',
        action: 'admin.notifications.scheduled',
        ip: request.ip,
        details: { notification: notification.id, scheduledFor: notification.scheduledFor.toISOString() },
      });
      return reply.status(201).send({ notification });
    },
  );

  app.get(
    '/admin/notifications',
    admin({ summary: 'Scheduled notifications, by status', input: { query: listQuery }, ok: { 200: z.object({ notifications: z.array(jsonObject) }) } }),
    async (request) => {
      const query = parseInput(listQuery, request.query, 'query');
      return { notifications: await listNotifications(pool, query) };
    },
  );

  app.delete(
    '/admin/notifications/:id',
    admin({
      summary: 'Cancel a scheduled notification (409 once it went out)',
      input: { params: idParams },
      ok: { 200: z.object({ notification: jsonObject }) },
    }),
    async (request) => {
      const { id } = parseInput(idParams, request.params, 'params');
      const notification = await cancelScheduledNotification(pool, id, 'admin-api');
      await recordAudit(pool, { actor: 'admin-api', action: 'admin.notifications.cancelled', ip: request.ip, details: { notification: id } });
      return { notification };
    },
  );
};
