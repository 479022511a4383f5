/**
 * The OpenAPI document: served at GET /openapi.json (and browsable at /docs), built from the
 * schemas every route declares, naming every route of the app, and passing
 * `redocly lint` (rules in redocly.yaml; run offline, without telemetry). It is built on its
 * first request: a server nobody asks for it never loads what builds it (src/http/api-docs.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startTestApi, type TestApi } from '../helpers/api.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);
/** The CommonJS modules this process has loaded (what the documentation and Fastify's Ajv are). */
const loadedModules = () => Object.keys(createRequire(import.meta.url).cache);
const documentationModules = (paths: readonly string[]) =>
  paths.filter((file) => /node_modules\/((@fastify\/swagger|@fastify\/swagger-ui|@fastify\/static|yaml|ajv)\/|fast-json-stringify\/index\.js)/.test(file));

/** `/tasks/:id` → `/tasks/{id}`, as OpenAPI writes path parameters. */
function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

describe('the OpenAPI document', () => {
  let api: TestApi;
  // The document as served; a JSON value read field by field below.
  let document: Record<string, any>;
  let loadedAtStart: readonly string[];

  before(async () => {
    api = await startTestApi();
    loadedAtStart = documentationModules(loadedModules());
    const response = await api.request('GET', '/openapi.json');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /application\/json/);
    document = response.json;
  });
  after(() => api.close());

  test('is built on its first request: the server starts without the modules that build it, or Ajv', () => {
    assert.deepEqual(loadedAtStart, []);
    assert.ok(
      documentationModules(loadedModules()).some((file) => file.includes('@fastify/swagger/')),
      'serving it loaded @fastify/swagger',
    );
  });

  test('is the same document on every request, and the one Swagger UI reads', async () => {
    const [again, forUi] = await Promise.all([api.request('GET', '/openapi.json'), api.request('GET', '/docs/json')]);
    assert.deepEqual(again.json, document);
    assert.deepEqual(forUi.json, document);
  });

  test('names every route of the route table, with its method', () => {
    const routes = api.server.app.routeTable.filter((route) => route.method !== 'HEAD');
    assert.ok(routes.length > 20, `expected the app's routes, found ${routes.length}`);
    const missing = routes.filter((route) => document.paths?.[openApiPath(route.url)]?.[route.method.toLowerCase()] === undefined);
    assert.deepEqual(
      missing.map((route) => `${route.method} ${route.url}`),
      [],
    );
  });

  test("describes a route's input from the zod schemas its handler validates with", () => {
    const createTask = document.paths['/tasks'].post;
    const body = createTask.requestBody.content['application/json'].schema;
    assert.deepEqual(body.required, ['title']);
    assert.equal(body.additionalProperties, false);
    assert.equal(body.properties.title.maxLength, 500);
    assert.deepEqual(createTask.security, [{ sessionToken: [] }]);
    const taskId = document.paths['/tasks/{id}'].get.parameters.find((parameter: { name: string }) => parameter.name === 'id');
    assert.equal(taskId.in, 'path');
    assert.equal(document.paths['/admin/maintenance'].post.responses['4XX'].content['application/json'].schema.properties.error.required.length, 2);
  });

  test("is browsable at /docs, Swagger UI's files served with their caching headers, and what it lacks is the app's 404", async () => {
    const page = await api.request('GET', '/docs/');
    assert.equal(page.status, 200);
    assert.match(page.text, /<html/i);
    const script = await api.request('GET', '/docs/static/swagger-ui-bundle.js');
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type') ?? '', /javascript/);
    assert.ok(script.headers.get('etag') && script.headers.get('last-modified'), 'ETag and Last-Modified');
    const missing = await api.request('GET', '/docs/static/no-such-file.js');
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'SHIP_ERR_NOT_FOUND');
  });

  test('passes redocly lint', async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'shipshape-openapi-'));
    try {
      const file = path.join(folder, 'openapi.json');
      await writeFile(file, JSON.stringify(document));
      const redocly = path.join(root, 'node_modules', '.bin', 'redocly');
      const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' };
      const result = await run(redocly, ['lint', file, '--config', path.join(root, 'redocly.yaml'), '--format', 'stylish'], { env }).catch(
        (error: { code?: number; stdout?: string; stderr?: string }) => ({ failed: error.code, stdout: error.stdout ?? '', stderr: error.stderr ?? '' }),
      );
      assert.ok(!('failed' in result), `redocly lint found errors:\n${result.stdout}\n${result.stderr}`);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});
