/**
 * Input shapes shared by routes. Objects are strict: an unknown field is a mistake the
 * client should hear about, not something silently dropped.
 */
import { z } from 'zod';

export const email = z.string().trim().toLowerCase().pipe(z.email('must be an email address like ada@example.com')).pipe(z.string().max(320));
export const password = z.string().min(8, 'must be at least 8 characters').max(256, 'must be at most 256 characters');
export const uuid = z.uuid('must be a UUID');
/**
 * A calendar date PostgreSQL's `date` can store and the app can show: zod's ISO date accepts
 * year 0000, which PostgreSQL refuses (there is no year 0).
 */
export const calendarDate = z.iso
  .date('must be a date like 2026-03-02')
  .refine((date) => !date.startsWith('0000-'), 'must be a date between 0001-01-01 and 9999-12-31');
/** Free-form JSON for a push notification's `data`; parseInput already refused NULs, lone surrogates and deep nesting. */
export const notificationData = z.record(z.string(), z.json().meta({ id: 'JsonValue', description: 'Any JSON value' }));

// Response shapes, for the OpenAPI document (src/http/route-schema.ts). Dates are sent as ISO 8601 strings.

const timestamp = z.iso.datetime({ offset: true });

export const userBody = z.object({ id: z.uuid(), email: z.string(), displayName: z.string().nullable(), createdAt: timestamp });

/** What signing in (or registering, or restoring an account) answers: a session token, shown once. */
export const sessionGrant = z.object({ token: z.string().describe('Send as `Authorization: Bearer <token>`'), expiresAt: timestamp, user: userBody });

export const taskBody = z.object({
  id: z.uuid(),
  title: z.string(),
  notes: z.string().nullable(),
  done: z.boolean(),
  dueDate: z.iso.date().nullable(),
  createdAt: timestamp,
  updatedAt: timestamp,
});

export const taskPage = z.object({
  tasks: z.array(taskBody),
  nextCursor: z.string().nullable().describe('Pass back as `cursor` for the next page; null on the last page'),
});

export const preferencesBody = z.object({
  theme: z.enum(['light', 'dark', 'system']),
  locale: z.string().nullable(),
  timeZone: z.string().nullable(),
  notificationsEnabled: z.boolean(),
});
