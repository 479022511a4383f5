/**
 * Input shapes shared by routes. Objects are strict: an unknown field is a mistake the
 * client should hear about, not something silently dropped.
 */
import { z } from 'zod';

export const email = z.string().trim().toLowerCase().pipe(z.email('must be an email address like ada@example.com')).pipe(z.string().max(320));
export const password = z.string().min(8, 'must be at least 8 characters').max(256, 'must be at most 256 characters');
export const uuid = z.uuid('must be a UUID');
