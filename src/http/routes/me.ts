/**
 * /me: the signed-in user's own account data.
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { getPreferences, putPreferences, themes } from '../../domain/preferences.ts';
import { currentUser } from '../plugins/guards.ts';
import type { RouteDeps } from '../route-deps.ts';
import { routeSchema, type RouteDoc } from '../route-schema.ts';
import { preferencesBody, userBody } from '../schemas.ts';
import { parseInput } from '../validation.ts';

const preferences = z.strictObject({
  theme: z.enum(themes).optional(),
  locale: z
    .string()
    .regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'must be a language tag like en or pt-BR')
    .nullable()
    .optional(),
  timeZone: z
    .string()
    .max(64)
    .refine((zone) => Intl.supportedValuesOf('timeZone').includes(zone) || zone === 'UTC', 'must be an IANA time zone like Europe/Paris')
    .nullable()
    .optional(),
  notificationsEnabled: z.boolean().optional(),
});

export const meRoutes: FastifyPluginAsync<RouteDeps> = async (app, { context, guards }) => {
  const { pool } = context.database;
  const signedIn = (doc: Omit<RouteDoc, 'audience'>) => ({ schema: routeSchema('account', { ...doc, audience: 'user' }), preHandler: [guards.requireUser] });

  app.get('/me', signedIn({ summary: 'Your account', ok: { 200: userBody } }), async (request) => currentUser(request).user);

  app.get('/me/preferences', signedIn({ summary: 'Your preferences', ok: { 200: preferencesBody } }), async (request) =>
    getPreferences(pool, currentUser(request).user.id),
  );

  app.put(
    '/me/preferences',
    signedIn({ summary: 'Change your preferences (the fields sent)', input: { body: preferences }, ok: { 200: preferencesBody } }),
    async (request) => {
      const input = parseInput(preferences, request.body, 'body');
      return putPreferences(pool, currentUser(request).user.id, input);
    },
  );
};
