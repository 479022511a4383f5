/** Schemas for JSON values, so journal contents are checked rather than cast. */
import { z } from 'zod';
import type { JsonObject, JsonValue } from './types.ts';

export const jsonValueSchema: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(jsonValueSchema), z.record(z.string(), jsonValueSchema)]),
);
export const jsonObjectSchema: z.ZodType<JsonObject> = z.record(z.string(), jsonValueSchema);
