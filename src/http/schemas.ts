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
export const notificationData = z.record(z.string(), z.json());
