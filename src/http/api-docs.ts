/**
 * The OpenAPI document (`GET /openapi.json`) and Swagger UI (`/docs`), built on their first
 * request rather than at start: `@fastify/swagger` with `yaml`, Swagger UI, `@fastify/static`
 * and the zod → JSON Schema transform are some 170 modules that an API server which nobody
 * asks for its documentation never runs, and loading them at start cost every idle `serve`
 * several MB of resident memory (bench/startup.ts).
 *
 * The app records each route it documents as Fastify announces it (`onRoute`, as
 * `@fastify/swagger` itself does); the first request builds a separate, never-listening Fastify
 * instance holding `@fastify/swagger`, the same routes declared again with the same schemas,
 * and Swagger UI under /docs, and answers from it — the same document and the same UI as when
 * they were registered on the app itself. The app forwards /docs requests to it with `inject`,
 * so its own hooks (request id, metrics, error envelope, 404) still apply.
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { passThroughCompilers, SECURITY_SCHEMES } from './route-schema.ts';

export interface ApiDocsOptions {
  readonly version: string;
  /** The `servers` entry of the document: where clients reach the API. */
  readonly apiUrl: string;
  /** For what goes wrong while building or serving the documentation. */
  readonly logger: FastifyBaseLogger;
}

/** Response headers Fastify or Node set for the reply that carries the forwarded answer. */
const NOT_FORWARDED = new Set(['content-length', 'connection', 'keep-alive', 'transfer-encoding', 'date']);

export interface ApiDocs {
  /** Called for every route the app registers that the document describes (the app's onRoute hook). */
  document(route: RouteOptions): void;
  /** Registers GET /openapi.json and GET /docs, /docs/* on `app`. */
  register(app: FastifyInstance): void;
}

export function apiDocs(options: ApiDocsOptions): ApiDocs {
  // The route options as Fastify announced them, read when the document is built (as @fastify/swagger reads them).
  const routes: RouteOptions[] = [];
  let built: Promise<FastifyInstance> | undefined;
  const documentation = (): Promise<FastifyInstance> => {
    built ??= buildDocumentation(routes, options).catch((error: unknown) => {
      // A failed build is tried again on the next request.
      built = undefined;
      throw error;
    });
    return built;
  };

  async function forward(request: FastifyRequest, reply: FastifyReply) {
    const docs = await documentation();
    // GET for HEAD too: the answer is the GET's, and Node leaves the body out, as for every other HEAD.
    const answer = await docs.inject({ method: 'GET', url: request.url, headers: request.headers });
    // What Swagger UI does not have is the app's 404, in the app's envelope.
    if (answer.statusCode === 404) return reply.callNotFound();
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !NOT_FORWARDED.has(name)) reply.header(name, value);
    }
    // An empty answer (a redirect, a 304) goes out without a body, so without a content type either.
    return reply.code(answer.statusCode).send(answer.rawPayload.length > 0 ? answer.rawPayload : undefined);
  }

  return {
    document(route) {
      // As @fastify/swagger: HEAD routes (Fastify adds one per GET) are left out of the document.
      if (route.method !== 'HEAD') routes.push(route);
    },
    register(app) {
      app.get('/openapi.json', { schema: { hide: true }, config: { maintenanceExempt: true } }, async () => (await documentation()).swagger());
      app.get('/docs', { schema: { hide: true } }, forward);
      app.get('/docs/*', { schema: { hide: true } }, forward);
      app.addHook('onClose', async () => {
        await (await built?.catch(() => undefined))?.close();
      });
    },
  };
}

async function buildDocumentation(routes: readonly RouteOptions[], options: ApiDocsOptions): Promise<FastifyInstance> {
  const [{ default: Fastify }, { default: swagger }, { default: swaggerUi }, { jsonSchemaTransform, jsonSchemaTransformObject }] = await Promise.all([
    import('fastify'),
    import('@fastify/swagger'),
    import('@fastify/swagger-ui'),
    import('fastify-type-provider-zod'),
  ]);
  // The app logs the requests it forwards; this instance only logs what goes wrong in it.
  const docs = Fastify({ loggerInstance: options.logger, disableRequestLogging: true, schemaController: passThroughCompilers });
  await docs.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Shipshape API',
        version: options.version,
        description: 'The task-list app backend and the admin surface the runbook calls. Errors answer `{"error":{"code","message"}}`.',
        license: { name: 'UNLICENSED', identifier: 'LicenseRef-UNLICENSED' },
      },
      servers: [{ url: options.apiUrl }],
      tags: [
        { name: 'system', description: 'Health, remote config and metrics' },
        { name: 'auth', description: 'Accounts, sign-in and password resets' },
        { name: 'tasks', description: "The signed-in user's tasks" },
        { name: 'account', description: "The signed-in user's account, sessions, preferences and GDPR rights" },
        { name: 'devices', description: 'Push notification devices' },
        { name: 'admin', description: 'Maintenance mode and cache (admin token)' },
        { name: 'notifications', description: 'Push notifications to every user (admin token)' },
      ],
      components: {
        securitySchemes: {
          [SECURITY_SCHEMES.user]: { type: 'http', scheme: 'bearer', description: 'A session token from POST /auth/login' },
          [SECURITY_SCHEMES.admin]: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN, or a token from `shipshape admin-token issue`' },
        },
      },
    },
    transform: jsonSchemaTransform,
    // Schemas with an id (the recursive JSON value) go to components, referenced from where they are used.
    transformObject: jsonSchemaTransformObject,
  });
  // The app's routes again, in the order the app registered them, with the schemas they declared; nothing calls them.
  for (const route of routes) docs.route({ method: route.method, url: route.url, schema: route.schema, handler: async () => undefined });
  await docs.register(swaggerUi, { routePrefix: '/docs' });
  await docs.ready();
  return docs;
}
