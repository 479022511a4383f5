/**
 * What a route declares about itself, in Fastify's own `schema` option: its input (params,
 * query, body) as the very zod schemas its handler validates with (`parseInput`), its
 * responses, who may call it, and a summary. `@fastify/swagger` builds `GET /openapi.json` from
 * these declarations (zod → JSON Schema by `fastify-type-provider-zod`), the route table hands
 * the same schemas to the fuzzer, and the handler parses with them: one source for all three.
 *
 * Validation stays in the handler, and Fastify's validator passes input through untouched
 * (app.ts): Fastify validates before preHandler hooks, and this API has always answered
 * "sign in" (401) or "maintenance" (503) before judging a request's input, and refuses what no
 * field may hold (NUL, lone surrogates, deep nesting) before a schema runs.
 */
import type {} from '@fastify/swagger'; // its additions to FastifySchema: tags, summary, security
import type { FastifySchema, FastifySchemaCompiler, FastifyServerOptions } from 'fastify';
import { z } from 'zod';
import type { RouteInput } from './validation.ts';

/**
 * Fastify's schema compilers for this app: input passes through to the handler, which parses
 * it with the route's zod schemas, and replies are `JSON.stringify`'d, so declaring schemas
 * changes no answer. Given as the compilers' factory, they also keep Fastify from loading Ajv
 * and fast-json-stringify (some 110 modules) that it would never use.
 */
type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;
const passInputThrough: FastifySchemaCompiler<unknown> = () => (data) => ({ value: data });
export const passThroughCompilers = {
  compilersFactory: {
    // Fastify types these factories by Ajv's own; it calls what they return exactly as it calls
    // a compiler given to setValidatorCompiler / setSerializerCompiler, which these are.
    buildValidator: (() => passInputThrough) as unknown as CompilersFactory['buildValidator'],
    buildSerializer: () => () => (data: unknown) => JSON.stringify(data),
  },
} satisfies FastifyServerOptions['schemaController'];

/** Every error answer: `{"error":{"code","message"}}` (src/http/plugins/errors.ts). */
export const errorEnvelope = z
  .object({
    error: z.object({
      code: z.string().describe('A stable code from the error catalogue, e.g. SHIP_ERR_VALIDATION'),
      message: z.string().describe('What was wrong, then what to do'),
    }),
  })
  .describe('An error: a stable code and a message saying the cause, then the fix');

/** A response body this document does not spell out field by field. */
export const jsonObject = z.record(z.string(), z.unknown());

/** Who may call a route: anyone, a signed-in user (session token), or an operator (admin token). */
export type Audience = 'public' | 'user' | 'admin';

export interface RouteDoc {
  readonly summary: string;
  readonly description?: string;
  readonly audience: Audience;
  /** The zod schemas the handler reads its input with. */
  readonly input?: RouteInput;
  /** Success answers by status: the body's schema, or null when there is none (204). */
  readonly ok: Readonly<Record<number, z.ZodType | null>>;
}

/** Security scheme names, as declared in the document's components (app.ts). */
export const SECURITY_SCHEMES = {
  user: 'sessionToken',
  admin: 'adminToken',
} as const;

/** The `schema` option of a route, for one tag (the route module's area). */
export function routeSchema(tag: string, doc: RouteDoc): FastifySchema {
  const response: Record<string, z.ZodType> = {};
  for (const [status, body] of Object.entries(doc.ok)) response[status] = body ?? z.null().describe('No content');
  response['4xx'] = errorEnvelope;
  response['5xx'] = errorEnvelope;
  return {
    tags: [tag],
    summary: doc.summary,
    ...(doc.description === undefined ? {} : { description: doc.description }),
    security: doc.audience === 'public' ? [] : [{ [SECURITY_SCHEMES[doc.audience]]: [] }],
    ...(doc.input?.params ? { params: doc.input.params } : {}),
    ...(doc.input?.query ? { querystring: doc.input.query } : {}),
    ...(doc.input?.body ? { body: doc.input.body } : {}),
    ...(doc.input?.headers ? { headers: doc.input.headers } : {}),
    response,
  };
}

/** The input schemas a route declared in its `schema` (what the route table hands the fuzzer). */
export function inputOf(schema: FastifySchema | undefined): RouteInput {
  const input: RouteInput = {};
  if (schema?.params instanceof z.ZodType) input.params = schema.params;
  if (schema?.querystring instanceof z.ZodType) input.query = schema.querystring;
  if (schema?.body instanceof z.ZodType) input.body = schema.body;
  if (schema?.headers instanceof z.ZodType) input.headers = schema.headers;
  return input;
}
