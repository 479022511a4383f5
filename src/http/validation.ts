/**
 * Input validation for routes: zod schemas, and errors that name the field.
 *
 * Before a schema sees the input, `parseInput` refuses what no field of this API may hold and
 * what would reach PostgreSQL only to be refused there (as a 500): a NUL character, which a
 * `text` or `jsonb` value cannot contain; a lone UTF-16 surrogate, which `jsonb` refuses and
 * `text` would silently turn into U+FFFD; and JSON nested deeper than `MAX_INPUT_DEPTH`, which
 * no client needs and which makes recursive validators and `jsonb` run out of stack. The walk
 * is iterative, so the check itself cannot overflow. It covers object keys as well as values.
 *
 * Each route declares the schemas it reads in its `schema` option (src/http/route-schema.ts),
 * so the OpenAPI document describes them and the fuzzer (test/http/fuzz.test.ts) generates
 * requests for every route from the very shapes the route validates with.
 */
import type { z } from 'zod';
import { ShipError } from '../errors.ts';

type Location = 'body' | 'query' | 'params' | 'headers';

/** The schemas a route reads its input with, by where the input comes from. */
export type RouteInput = Partial<Record<Location, z.ZodType>>;

/** Deeper than any request of this API needs; notification `data` is the deepest field. */
export const MAX_INPUT_DEPTH = 32;

/** What a route reads when the request sent nothing there. */
const inputAt = (value: unknown, location: Location) => value ?? (location === 'body' ? undefined : {});

export function parseInput<T extends z.ZodType>(schema: T, value: unknown, location: Location): z.output<T> {
  const given = inputAt(value, location);
  const unstorable = findUnstorable(given, location);
  if (unstorable) throw new ShipError('SHIP_ERR_VALIDATION', unstorable, { details: { location } });
  const parsed = schema.safeParse(given);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.slice(0, 5).map((issue) => {
    const field = [location, ...issue.path.map(String)].join('.');
    return `${field}: ${issue.message}`;
  });
  throw new ShipError('SHIP_ERR_VALIDATION', issues.join('; '), { details: { location } });
}

/**
 * What `parseInput` would return, or undefined where it would refuse the input: for a route that
 * must answer a bad session before a bad input (it calls `parseInput` for the error afterwards).
 */
export function acceptedInput<T extends z.ZodType>(schema: T, value: unknown, location: Location): z.output<T> | undefined {
  const given = inputAt(value, location);
  if (findUnstorable(given, location)) return undefined;
  const parsed = schema.safeParse(given);
  return parsed.success ? parsed.data : undefined;
}

/** The first thing in `value` that no field may hold, as "<field>: <why>"; undefined when there is none. */
export function findUnstorable(value: unknown, location: string): string | undefined {
  const pending: Array<{ value: unknown; path: string; depth: number }> = [{ value, path: location, depth: 0 }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { value: current, path, depth } = next;
    if (typeof current === 'string') {
      const problem = textProblem(current);
      if (problem) return `${path}: ${problem}`;
      continue;
    }
    if (typeof current !== 'object' || current === null) continue;
    if (depth >= MAX_INPUT_DEPTH) return `${path}: JSON nested more than ${MAX_INPUT_DEPTH} levels deep; send a flatter value.`;
    for (const [key, inner] of Object.entries(current)) {
      const keyProblem = textProblem(key);
      if (keyProblem) return `${path}: a key ${keyProblem}`;
      pending.push({ value: inner, path: `${path}.${key}`, depth: depth + 1 });
    }
  }
  return undefined;
}

function textProblem(text: string): string | undefined {
  if (text.includes('\u0000')) return 'must not contain the NUL character (U+0000).';
  if (!text.isWellFormed()) return 'must be valid Unicode text (it contains a lone UTF-16 surrogate).';
  return undefined;
}
