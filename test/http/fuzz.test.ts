/**
 * The HTTP fuzzer: for every route the app registers (read from `app.routeTable`, so a new
 * route is fuzzed without being listed here), fast-check generates valid, boundary and hostile
 * requests from the zod schemas the route declares (test/helpers/fuzz-requests.ts) and sends
 * them in-process with `app.inject`, on PostgreSQL and on the embedded database. After each:
 *
 * - no 5xx while the database is up (a 503 for maintenance the fuzzer itself switched on aside);
 * - every 4xx is the error envelope `{"error":{"code","message"}}`;
 * - another user's data (account, sessions, tasks, preferences, devices) is unchanged;
 * - the next valid request (another user listing their tasks, /health) succeeds.
 *
 * Seeded and bounded: FUZZ_SEED (printed) and FUZZ_RUNS per route (default 100 here, 2,000
 * under `npm run fuzz`). A failure prints the seed, the counterexample and fast-check's replay path.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { RouteEntry } from '../../src/http/app.ts';
import { createSession } from '../../src/domain/sessions.ts';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';
import { ADMIN_TOKEN, signUp, startTestApi, type TestApi } from '../helpers/api.ts';
import { requestsFor, type FuzzIdentities, type FuzzRequest } from '../helpers/fuzz-requests.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_202);
const RUNS = Number(process.env.FUZZ_RUNS ?? 100);

/** Everything of one user another user must not be able to change, as one JSON text. */
const VICTIM_SNAPSHOT = `
SELECT json_build_object(
  'user', (SELECT row_to_json(u) FROM (SELECT email, password_hash, display_name, updated_at FROM users WHERE id = $1::uuid) u),
  'sessions', (SELECT json_agg(s ORDER BY s.id) FROM (SELECT id, expires_at, revoked_at FROM sessions WHERE user_id = $1::uuid) s),
  'tasks', (SELECT json_agg(t ORDER BY t.id) FROM (SELECT id, title, notes, done, due_date, updated_at FROM tasks WHERE user_id = $1::uuid) t),
  'preferences', (SELECT row_to_json(p) FROM user_preferences p WHERE user_id = $1::uuid),
  'devices', (SELECT json_agg(d ORDER BY d.token) FROM (SELECT token, platform FROM devices WHERE user_id = $1::uuid) d),
  'deletion', (SELECT count(*) FROM deletion_requests WHERE user_id = $1::uuid)
)::text AS snapshot`;

/** A stable per-route seed, so adding a route does not change what the others are sent. */
function routeSeed(route: RouteEntry): number {
  let hash = SEED;
  for (const character of `${route.method} ${route.url}`) hash = (Math.imul(hash, 31) + character.charCodeAt(0)) | 0;
  return hash;
}

for (const backend of ['postgres', 'embedded'] as const) {
  describe(`fuzzing every route on ${backend}`, () => {
    let api: TestApi;
    let expo: FakeExpo;
    let victim: Awaited<ReturnType<typeof signUp>>;
    let control: Awaited<ReturnType<typeof signUp>>;
    let attacker: Awaited<ReturnType<typeof signUp>>;
    let attackerToken: string;
    let identities: FuzzIdentities;

    before(async () => {
      expo = await startFakeExpo();
      api = await startTestApi({ embedded: backend === 'embedded', env: { EXPO_PUSH_URL: expo.pushUrl } });
      victim = await signUp(api);
      control = await signUp(api);
      attacker = await signUp(api);
      attackerToken = attacker.token;
      const victimTask = await api.request('POST', '/tasks', { token: victim.token, body: { title: 'victim task', notes: 'private', dueDate: '2027-01-01' } });
      await api.request('PUT', '/me/preferences', { token: victim.token, body: { theme: 'dark', locale: 'en', timeZone: 'Europe/Paris' } });
      await api.request('POST', '/me/devices', { token: victim.token, body: { token: `ExponentPushToken[victim-${victim.id}]`, platform: 'ios' } });
      const attackerTask = await api.request('POST', '/tasks', { token: attacker.token, body: { title: 'attacker task' } });
      // Ids the admin routes know, so GET and DELETE by id reach more than the 404.
      const scheduled = await api.request('POST', '/admin/notifications/schedule', {
        token: ADMIN_TOKEN,
        body: { scheduledFor: new Date(Date.now() + 86_400_000).toISOString(), title: 't', body: 'b' },
      });
      const sent = await api.request('POST', '/admin/notifications/send', { token: ADMIN_TOKEN, body: { title: 't', body: 'b' } });
      identities = {
        attackerToken: () => attackerToken,
        adminToken: ADMIN_TOKEN,
        knownIds: [victimTask.json.id, attackerTask.json.id, victim.id, attacker.id, scheduled.json.notification.id, sent.json.job.id],
        knownEmails: [victim.email, attacker.email],
      };
      console.log(`fuzz on ${backend}: seed ${SEED} (FUZZ_SEED), ${RUNS} runs per route (FUZZ_RUNS)`);
    });
    after(async () => {
      await api?.close();
      await expo?.close();
    });

    test('every route that reads a path parameter declares the schema it validates it with', () => {
      const routes = api.server.app.routeTable;
      assert.ok(routes.length >= 25, `expected the whole API in the route table, got ${routes.length}`);
      for (const route of routes) {
        if (route.url.includes(':')) assert.ok(route.input.params, `${route.method} ${route.url} reads a path parameter without declaring schema.params`);
      }
    });

    test("no route answers 5xx, leaves the envelope, touches another user's data or breaks the next request", async (t) => {
      const { app, database } = api.server;
      const snapshot = async () => (await database.pool.query<{ snapshot: string }>(VICTIM_SNAPSHOT, [victim.id])).rows[0]!.snapshot;
      const before = await snapshot();
      // HEAD routes are Fastify's copies of the GET routes: the same handler, already fuzzed.
      const routes = app.routeTable.filter((route) => route.method !== 'HEAD');

      let statuses = new Map<number, number>();
      const check = async (request: FuzzRequest): Promise<void> => {
        const response = await app.inject({
          method: request.method as 'GET',
          url: request.url,
          headers: request.headers,
          payload: request.payload,
          remoteAddress: request.remoteAddress,
        });
        statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
        const context = `${request.label}\n→ ${response.statusCode} ${response.body.slice(0, 400)}`;
        let body: { error?: { code?: unknown; message?: unknown } } | undefined;
        try {
          body = response.body ? JSON.parse(response.body) : undefined;
        } catch {
          body = undefined;
        }
        const maintenance = response.statusCode === 503 && body?.error?.code === 'SHIP_ERR_MAINTENANCE';
        assert.ok(response.statusCode < 500 || maintenance, `5xx while the database is up: ${context}`);
        if (response.statusCode >= 400) {
          assert.equal(typeof body?.error?.code, 'string', `no error envelope: ${context}`);
          assert.equal(typeof body?.error?.message, 'string', `no error message: ${context}`);
        }
        if (maintenance || request.url.startsWith('/admin/maintenance')) {
          await app.inject({ method: 'POST', url: '/admin/maintenance', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, payload: { enabled: false } });
        }
        assert.equal(await snapshot(), before, `another user's data changed: ${context}`);
        const next = await app.inject({ method: 'GET', url: '/tasks', headers: { authorization: `Bearer ${control.token}` } });
        assert.equal(next.statusCode, 200, `the next valid request failed (${next.statusCode} ${next.body.slice(0, 200)}) after: ${context}`);
        // The fuzzer may sign its own user out (logout, logout-all): it signs in again.
        const own = await app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${attackerToken}` } });
        if (own.statusCode === 401) attackerToken = (await createSession(database.pool, { userId: attacker.id, ttlHours: 1 })).token;
      };

      for (const route of routes) {
        await t.test(`${route.method} ${route.url}`, async (routeTest) => {
          statuses = new Map();
          await fc.assert(fc.asyncProperty(requestsFor(route, identities), check), { seed: routeSeed(route), numRuns: RUNS, endOnFailure: true });
          // What the route answered, so a generator that never gets past validation shows.
          routeTest.diagnostic(
            `answers: ${[...statuses]
              .sort(([a], [b]) => a - b)
              .map(([status, count]) => `${status}×${count}`)
              .join(' ')}`,
          );
        });
      }
      const health = await app.inject({ method: 'GET', url: '/health' });
      assert.equal(health.statusCode, 200, health.body);
    });
  });
}
