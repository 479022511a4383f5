/**
 * Input validation for routes: zod schemas, and errors that name the field.
 */
import type { z } from 'zod';
import { ShipError } from '../errors.ts';

type Location = 'body' | 'query' | 'params';

export function parseInput<T extends z.ZodType>(schema: T, value: unknown, location: Location): z.output<T> {
  const parsed = schema.safeParse(value ?? (location === 'body' ? undefined : {}));
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.slice(0, 5).map((issue) => {
    const field = [location, ...issue.path.map(String)].join('.');
    return `${field}: ${issue.message}`;
  });
  throw new ShipError('SHIP_ERR_VALIDATION', issues.join('; '), { details: { location } });
}
