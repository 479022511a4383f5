/**
 * /me: the signed-in user's own account data.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { getPreferences, putPreferences, themes } from '../../domain/preferences.ts';
import type { ApiContext } from '../context.ts';
import { currentUser, type Guards } from '../plugins/guards.ts';
import { parseInput } from '../validation.ts';

const preferences = z.strictObject({
  theme: z.enum(themes).optional(),
  locale: z.string().regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'must be a language tag like en or pt-BR').nullable().optional(),
  timeZone: z
    .string()
    .max(64)
    .refine((zone) => Intl.supportedValuesOf('timeZone').includes(zone) || zone === 'UTC', 'must be an IANA time zone like Europe/Paris')
    .nullable()
    .optional(),
  notificationsEnabled: z.boolean().optional(),
});

export function meRoutes(app: FastifyInstance, context: ApiContext, guards: Guards): void {
  const { pool } = context.database;
  const signedIn = { preHandler: [guards.requireUser] };

  app.get('/me', signedIn, async (request) => currentUser(request).user);

  app.get('/me/preferences', signedIn, async (request) => getPreferences(pool, currentUser(request).user.id));

  app.put('/me/preferences', { ...signedIn, config: { input: { body: preferences } } }, async (request) => {
    const input = parseInput(preferences, request.body, 'body');
    return putPreferences(pool, currentUser(request).user.id, input);
  });
}
