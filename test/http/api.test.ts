/**
 * The HTTP API contract (PRODUCT.md), exercised through real HTTP against the real
 * server, once on PostgreSQL and once on the embedded database.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { requestPasswordReset } from '../../src/domain/auth.ts';
import type { Mailer, OutgoingMail } from '../../src/adapters/mailer.ts';
import { createLogger } from '../../src/log.ts';
import { ADMIN_TOKEN, signUp, startTestApi, type TestApi } from '../helpers/api.ts';
import { eventually } from '../helpers/patience.ts';

for (const backend of ['postgres', 'embedded'] as const) {
  describe(`API on ${backend}`, () => {
    let api: TestApi;
    before(async () => {
      api = await startTestApi({ embedded: backend === 'embedded' });
    });
    after(async () => {
      await api.close();
    });

    test('GET /health reports ok with the database and version', async () => {
      const response = await api.request('GET', '/health');
      assert.equal(response.status, 200);
      assert.equal(response.json.status, 'ok');
      assert.equal(response.json.db, 'ok');
      assert.match(response.json.version, /^\d+\.\d+\.\d+/);
      assert.ok(response.headers.get('x-request-id'));
    });

    test('registration returns a token and refuses the same email in another case', async () => {
      const email = `Mixed.Case.${Date.now()}@Example.com`;
      const first = await api.request('POST', '/auth/register', { body: { email, password: 'correct horse battery' } });
      assert.equal(first.status, 201);
      assert.equal(typeof first.json.token, 'string');
      assert.equal(first.json.user.email, email.toLowerCase());
      assert.equal(first.json.user.password_hash, undefined);
      const again = await api.request('POST', '/auth/register', { body: { email: email.toUpperCase(), password: 'another password' } });
      assert.equal(again.status, 409);
      assert.equal(again.json.error.code, 'SHIP_ERR_EMAIL_TAKEN');
    });

    test('bad registration input is a 400 that names the field', async () => {
      const cases: Array<[unknown, RegExp]> = [
        [{ email: 'not-an-email', password: 'long enough password' }, /body\.email/],
        [{ email: 'a@example.com', password: 'short' }, /body\.password: must be at least 8/],
        [{ email: 'a@example.com', password: 'long enough password', admin: true }, /admin/],
        [{ email: 42, password: 'long enough password' }, /body\.email/],
        [[], /body/],
      ];
      for (const [body, message] of cases) {
        const response = await api.request('POST', '/auth/register', { body });
        assert.equal(response.status, 400, JSON.stringify(body));
        assert.equal(response.json.error.code, 'SHIP_ERR_VALIDATION');
        assert.match(response.json.error.message, message);
      }
    });

    test('login returns {token,user}; a wrong password and an unknown email fail alike', async () => {
      const user = await signUp(api);
      const ok = await api.request('POST', '/auth/login', { body: { email: user.email.toUpperCase(), password: user.password } });
      assert.equal(ok.status, 200);
      assert.equal(ok.json.user.id, user.id);
      const wrong = await api.request('POST', '/auth/login', { body: { email: user.email, password: 'wrong password!' } });
      const unknown = await api.request('POST', '/auth/login', { body: { email: `nobody-${Date.now()}@example.com`, password: 'wrong password!' } });
      assert.equal(wrong.status, 401);
      assert.equal(unknown.status, 401);
      assert.deepEqual(wrong.json, unknown.json);
    });

    test('passwords are stored as argon2id hashes', async () => {
      if (backend !== 'postgres') return;
      const user = await signUp(api);
      const client = new pg.Client({ connectionString: api.config.databaseUrl });
      await client.connect();
      const { rows } = await client.query('SELECT password_hash FROM users WHERE id = $1', [user.id]);
      await client.end();
      assert.match(rows[0].password_hash, /^\$argon2id\$/);
    });

    test('tasks: create, read, update, delete, only by their owner', async () => {
      const owner = await signUp(api);
      const stranger = await signUp(api);
      const created = await api.request('POST', '/tasks', { token: owner.token, body: { title: 'Buy milk', dueDate: '2026-12-01' } });
      assert.equal(created.status, 201);
      assert.equal(created.json.title, 'Buy milk');
      assert.equal(created.json.dueDate, '2026-12-01');
      assert.equal(created.json.done, false);
      const id = created.json.id;

      assert.equal((await api.request('GET', `/tasks/${id}`, { token: owner.token })).json.title, 'Buy milk');
      for (const [method, body] of [
        ['GET', undefined],
        ['PATCH', { done: true }],
        ['DELETE', undefined],
      ] as const) {
        const response = await api.request(method, `/tasks/${id}`, { token: stranger.token, body });
        assert.equal(response.status, 404, `${method} by a stranger`);
      }
      const patched = await api.request('PATCH', `/tasks/${id}`, { token: owner.token, body: { done: true, notes: 'semi-skimmed' } });
      assert.equal(patched.status, 200);
      assert.equal(patched.json.done, true);
      assert.equal(patched.json.notes, 'semi-skimmed');
      assert.equal(patched.json.title, 'Buy milk');
      assert.equal((await api.request('DELETE', `/tasks/${id}`, { token: owner.token })).status, 204);
      assert.equal((await api.request('GET', `/tasks/${id}`, { token: owner.token })).status, 404);
    });

    test('task input is validated: empty title, bad date, bad id, empty patch', async () => {
      const user = await signUp(api);
      const emptyTitle = await api.request('POST', '/tasks', { token: user.token, body: { title: '  ' } });
      assert.equal(emptyTitle.status, 400);
      assert.match(emptyTitle.json.error.message, /body\.title/);
      const badDate = await api.request('POST', '/tasks', { token: user.token, body: { title: 'x', dueDate: '2026-13-45' } });
      assert.equal(badDate.status, 400);
      assert.match(badDate.json.error.message, /body\.dueDate/);
      const badId = await api.request('GET', '/tasks/not-a-uuid', { token: user.token });
      assert.equal(badId.status, 400);
      assert.match(badId.json.error.message, /params\.id/);
      const emptyPatch = await api.request('PATCH', '/tasks/00000000-0000-4000-8000-000000000000', { token: user.token, body: {} });
      assert.equal(emptyPatch.status, 400);
    });

    test('task lists are newest first and paginate by cursor without gaps or repeats', async () => {
      const user = await signUp(api);
      const titles: string[] = [];
      for (let i = 0; i < 7; i++) {
        titles.push(`task ${i}`);
        await api.request('POST', '/tasks', { token: user.token, body: { title: `task ${i}` } });
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const query: string = cursor ? `?limit=3&cursor=${cursor}` : '?limit=3';
        const page = await api.request('GET', `/tasks${query}`, { token: user.token });
        assert.equal(page.status, 200);
        seen.push(...page.json.tasks.map((task: { title: string }) => task.title));
        cursor = page.json.nextCursor;
      } while (cursor);
      assert.deepEqual(seen, titles.reverse());
      const badCursor = await api.request('GET', '/tasks?cursor=garbage', { token: user.token });
      assert.equal(badCursor.status, 400);
      const badLimit = await api.request('GET', '/tasks?limit=1000', { token: user.token });
      assert.equal(badLimit.status, 400);
    });

    test('preferences default, then replace with PUT; bad values are refused', async () => {
      const user = await signUp(api);
      const initial = await api.request('GET', '/me/preferences', { token: user.token });
      assert.deepEqual(initial.json, { theme: 'system', locale: null, timeZone: null, notificationsEnabled: true });
      const put = await api.request('PUT', '/me/preferences', { token: user.token, body: { theme: 'dark', timeZone: 'Europe/Paris' } });
      assert.equal(put.status, 200);
      assert.equal(put.json.theme, 'dark');
      assert.equal((await api.request('GET', '/me/preferences', { token: user.token })).json.timeZone, 'Europe/Paris');
      const bad = await api.request('PUT', '/me/preferences', { token: user.token, body: { theme: 'neon' } });
      assert.equal(bad.status, 400);
      assert.match(bad.json.error.message, /body\.theme/);
      const badZone = await api.request('PUT', '/me/preferences', { token: user.token, body: { timeZone: 'Mars/Olympus' } });
      assert.equal(badZone.status, 400);
    });

    test('logout revokes the token; an expired session is refused', async () => {
      const user = await signUp(api);
      assert.equal((await api.request('POST', '/auth/logout', { token: user.token })).status, 204);
      const after = await api.request('GET', '/tasks', { token: user.token });
      assert.equal(after.status, 401);
      assert.equal(after.json.error.code, 'SHIP_ERR_UNAUTHENTICATED');

      const other = await signUp(api);
      await api.server.database.pool.query("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1", [other.id]);
      assert.equal((await api.request('GET', '/tasks', { token: other.token })).status, 401);
      assert.equal((await api.request('GET', '/tasks')).status, 401);
      assert.equal((await api.request('GET', '/tasks', { token: 'made-up-token' })).status, 401);
    });

    test('maintenance mode: app routes 503 with the message, health says so, admin and config keep working', async () => {
      const user = await signUp(api);
      const on = await api.request('POST', '/admin/maintenance', { token: ADMIN_TOKEN, body: { enabled: true, message: 'Back at 03:00' } });
      assert.equal(on.status, 200);
      assert.equal(on.json.maintenance.enabled, true);
      try {
        const tasks = await api.request('GET', '/tasks', { token: user.token });
        assert.equal(tasks.status, 503);
        assert.equal(tasks.json.error.code, 'SHIP_ERR_MAINTENANCE');
        assert.equal(tasks.json.error.message, 'Back at 03:00');
        assert.ok(Number(tasks.headers.get('retry-after')) > 0);
        const login = await api.request('POST', '/auth/login', { body: { email: user.email, password: user.password } });
        assert.equal(login.status, 503);
        const health = await api.request('GET', '/health');
        assert.equal(health.status, 503);
        assert.equal(health.json.status, 'maintenance');
        assert.equal(health.json.message, 'Back at 03:00');
        const config = await api.request('GET', '/config');
        assert.equal(config.status, 200);
        assert.deepEqual(config.json.maintenance, { enabled: true, mode: 'full', message: 'Back at 03:00' });
        assert.equal(config.json.readOnly, false);
        assert.equal((await api.request('GET', '/metrics', { token: ADMIN_TOKEN })).status, 200);
      } finally {
        const off = await api.request('POST', '/admin/maintenance', { token: ADMIN_TOKEN, body: { enabled: false } });
        assert.equal(off.status, 200);
      }
      assert.equal((await api.request('GET', '/tasks', { token: user.token })).status, 200);
      assert.equal((await api.request('GET', '/health')).status, 200);
    });

    test('read-only mode: reads are served, writes answer 503 with the message, health and config say read-only, and its 503s are not counted as errors', async () => {
      const user = await signUp(api);
      const errorsCounted = async () =>
        Number(/^shipshape_http_request_errors_total (\d+)$/m.exec((await api.request('GET', '/metrics/prometheus', { token: ADMIN_TOKEN })).text)?.[1]);
      const errorsBefore = await errorsCounted();
      const on = await api.request('POST', '/admin/maintenance', { token: ADMIN_TOKEN, body: { enabled: true, mode: 'read-only', message: 'Restoring data' } });
      assert.equal(on.status, 200);
      assert.equal(on.json.maintenance.mode, 'read-only');
      try {
        assert.equal((await api.request('GET', '/tasks', { token: user.token })).status, 200, 'reads are served');
        const write = await api.request('POST', '/tasks', { token: user.token, body: { title: 'not now' } });
        assert.equal(write.status, 503);
        assert.equal(write.json.error.code, 'SHIP_ERR_READ_ONLY');
        assert.match(write.json.error.message, /^Restoring data/);
        assert.ok(Number(write.headers.get('retry-after')) > 0);
        const health = await api.request('GET', '/health');
        assert.equal(health.status, 200, 'a read-only instance stays in the load balancer');
        assert.equal(health.json.status, 'read-only');
        const config = await api.request('GET', '/config');
        assert.deepEqual(config.json.maintenance, { enabled: false, mode: 'read-only', message: 'Restoring data' });
        assert.equal(config.json.readOnly, true);
        assert.equal(await errorsCounted(), errorsBefore, 'deliberate read-only 503s are not errors');
      } finally {
        const off = await api.request('POST', '/admin/maintenance', { token: ADMIN_TOKEN, body: { enabled: false } });
        assert.equal(off.status, 200);
      }
      assert.equal((await api.request('POST', '/tasks', { token: user.token, body: { title: 'now' } })).status, 201);
      assert.deepEqual((await api.request('GET', '/config')).json.maintenance, { enabled: false, mode: 'off', message: null });
    });

    test('maintenance changed directly in the database reaches the instance without a restart', async () => {
      await api.server.database.pool.query("UPDATE app_state SET maintenance_enabled = true, maintenance_message = 'from elsewhere'");
      try {
        await eventually('the instance answering 503 for maintenance', async () => ((await api.request('GET', '/health')).status === 503 ? true : undefined));
      } finally {
        await api.server.database.pool.query('UPDATE app_state SET maintenance_enabled = false, maintenance_message = NULL');
        await api.request('POST', '/admin/maintenance', { token: ADMIN_TOKEN, body: { enabled: false } });
      }
    });

    test('admin routes need the admin token and audit every action', async () => {
      assert.equal((await api.request('POST', '/admin/cache/clear', { body: { scope: 'all' } })).status, 403);
      assert.equal((await api.request('POST', '/admin/cache/clear', { token: 'wrong-token-wrong-token', body: { scope: 'all' } })).status, 403);
      const before = (await api.request('GET', '/config')).json.cacheEpochs.tasks;
      const cleared = await api.request('POST', '/admin/cache/clear', { token: ADMIN_TOKEN, body: { scope: 'tasks' } });
      assert.equal(cleared.status, 200);
      assert.equal(cleared.json.epoch, before + 1);
      assert.equal((await api.request('GET', '/config')).json.cacheEpochs.tasks, before + 1);
      const badScope = await api.request('POST', '/admin/cache/clear', { token: ADMIN_TOKEN, body: { scope: 'everything' } });
      assert.equal(badScope.status, 400);
      const { rows } = await api.server.database.pool.query("SELECT details FROM audit_log WHERE action = 'admin.cache.cleared' ORDER BY id DESC LIMIT 1");
      assert.equal(rows[0].details.scope, 'tasks');
    });

    test('a user cache scope is stored by id, never by email', async () => {
      const user = await signUp(api);
      const cleared = await api.request('POST', '/admin/cache/clear', { token: ADMIN_TOKEN, body: { scope: `user:${user.email}` } });
      assert.equal(cleared.status, 200);
      const config = await api.request('GET', '/config');
      assert.ok(!config.text.includes(user.email));
      const missing = await api.request('POST', '/admin/cache/clear', { token: ADMIN_TOKEN, body: { scope: 'user:nobody@example.com' } });
      assert.equal(missing.status, 404);
    });

    test('metrics: the runbook JSON fields, and Prometheus text', async () => {
      const metrics = await api.request('GET', '/metrics', { token: ADMIN_TOKEN });
      assert.equal(metrics.status, 200);
      for (const field of ['activeUsers', 'requestsPerMinute', 'errorRate', 'avgResponseTime']) {
        assert.equal(typeof metrics.json[field], 'number', field);
      }
      assert.ok(metrics.json.requestsPerMinute > 0);
      const prometheus = await api.request('GET', '/metrics/prometheus', { token: ADMIN_TOKEN });
      assert.match(prometheus.headers.get('content-type') ?? '', /text\/plain/);
      assert.match(prometheus.text, /^shipshape_http_requests_total \d+$/m);
      const negotiated = await api.request('GET', '/metrics', { token: ADMIN_TOKEN, headers: { accept: 'text/plain' } });
      assert.match(negotiated.text, /# TYPE shipshape_http_request_duration_seconds histogram/);
      assert.equal((await api.request('GET', '/metrics')).status, 403);
    });

    test('malformed requests get 4xx envelopes, never a 500', async () => {
      const user = await signUp(api);
      const badJson = await api.request('POST', '/tasks', { token: user.token, raw: '{"title":' });
      assert.equal(badJson.status, 400);
      assert.equal(badJson.json.error.code, 'SHIP_ERR_BAD_JSON');
      const huge = await api.request('POST', '/tasks', { token: user.token, raw: JSON.stringify({ title: 'x'.repeat(100_000) }) });
      assert.equal(huge.status, 413);
      const wrongType = await api.request('POST', '/tasks', { token: user.token, raw: 'title=x', headers: { 'content-type': 'text/plain' } });
      assert.equal(wrongType.status, 415);
      const noRoute = await api.request('GET', '/nope');
      assert.equal(noRoute.status, 404);
      assert.equal(noRoute.json.error.code, 'SHIP_ERR_NOT_FOUND');
      const noBody = await api.request('POST', '/tasks', { token: user.token });
      assert.equal(noBody.status, 400);
      for (const response of [badJson, huge, wrongType, noRoute, noBody]) {
        assert.ok(!response.text.includes('    at '), 'no stack trace');
      }
    });

    test('password reset: 202 for known and unknown emails; the token works once and signs out everywhere', async () => {
      const user = await signUp(api);
      // The route answers before doing the work; the token checked below is made directly, for another user's request not to race it.
      for (const email of [(await signUp(api)).email, `ghost-${Date.now()}@example.com`]) {
        const response = await api.request('POST', '/auth/password-reset', { body: { email } });
        assert.equal(response.status, 202);
        assert.equal(response.json.status, 'accepted');
      }
      const sent: OutgoingMail[] = [];
      const mailer: Mailer = { send: async (mail) => (sent.push(mail), { messageId: 'm', accepted: [mail.to] }), close: () => undefined };
      const { accountExists, delivery } = await requestPasswordReset(api.server.database.pool, mailer, createLogger('silent'), {
        email: user.email,
        ttlMinutes: 60,
        publicUrl: 'https://app.example.com',
        requestedBy: 'test',
      });
      await delivery;
      assert.equal(accountExists, true);
      const token = new URL(/https:\S+/.exec(sent[0]!.text)![0]).searchParams.get('token');
      assert.ok(token);
      const confirm = await api.request('POST', '/auth/password-reset/confirm', { body: { token, password: 'a brand new password' } });
      assert.equal(confirm.status, 204);
      assert.equal((await api.request('GET', '/tasks', { token: user.token })).status, 401, 'old session revoked');
      const reuse = await api.request('POST', '/auth/password-reset/confirm', { body: { token, password: 'yet another password' } });
      assert.equal(reuse.status, 400);
      assert.equal(reuse.json.error.code, 'SHIP_ERR_RESET_TOKEN_INVALID');
      const login = await api.request('POST', '/auth/login', { body: { email: user.email, password: 'a brand new password' } });
      assert.equal(login.status, 200);
    });

    test('login is rate limited per account with 429 and Retry-After', async () => {
      const user = await signUp(api);
      let limited: Awaited<ReturnType<TestApi['request']>> | undefined;
      for (let i = 0; i < 15 && !limited; i++) {
        const response = await api.request('POST', '/auth/login', { body: { email: user.email, password: 'wrong password!' } });
        if (response.status === 429) limited = response;
        else assert.equal(response.status, 401);
      }
      assert.ok(limited, 'expected a 429 within 15 attempts');
      assert.equal(limited.json.error.code, 'SHIP_ERR_RATE_LIMITED');
      assert.ok(Number(limited.headers.get('retry-after')) > 0);
    });
  });
}

test('admin routes refuse with 503 when no ADMIN_TOKEN is configured', async () => {
  const api = await startTestApi({ embedded: false, env: { ADMIN_TOKEN: '' } });
  try {
    const response = await api.request('POST', '/admin/maintenance', { token: 'anything-anything', body: { enabled: true } });
    assert.equal(response.status, 503);
    assert.equal(response.json.error.code, 'SHIP_ERR_ADMIN_DISABLED');
    assert.match(response.json.error.message, /ADMIN_TOKEN/);
  } finally {
    await api.close();
  }
});
