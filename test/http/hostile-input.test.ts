/**
 * Input an attacker sends on purpose, each class of which once answered 500 (issue 11): a NUL
 * character in a stored string, JSON nested thousands deep, a date PostgreSQL cannot store, a
 * cursor that looks like one but is not. Each must be a 400 envelope that names the field, and
 * the server must carry on. Also the request's framing: duplicate Authorization headers, a body
 * in another charset, over-long URLs and headers, and client-chosen request ids.
 *
 * test/http/fuzz.test.ts generates such input for every route; this file pins the cases found
 * by hand, with readable names, on both databases.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Fastify from 'fastify';
import { registerErrorHandling } from '../../src/http/plugins/errors.ts';
import { ADMIN_TOKEN, signUp, startTestApi, type ApiResponse, type TestApi } from '../helpers/api.ts';

const NUL = '\u0000';

function assertEnvelope(response: ApiResponse, status: number, code: string, context: string): void {
  assert.equal(response.status, status, `${context}: ${response.status} ${response.text.slice(0, 300)}`);
  assert.equal(typeof response.json.error?.message, 'string', `${context}: envelope ${response.text.slice(0, 300)}`);
  assert.equal(response.json.error.code, code, `${context}: ${response.text.slice(0, 300)}`);
}

/** One HTTP/1.1 exchange over a raw socket, for requests fetch would tidy up (duplicate headers, huge heads). */
async function rawExchange(url: string, head: string, body = ''): Promise<{ status: number; headers: string; body: string; json: Record<string, any> }> {
  const { hostname, port } = new URL(url);
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      error.code === 'ECONNRESET' || error.code === 'EPIPE' ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(error),
    );
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.write(`${head}\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
  const [headers = '', ...rest] = text.split('\r\n\r\n');
  const responseBody = rest.join('\r\n\r\n');
  let json: Record<string, any> = {};
  try {
    json = JSON.parse(responseBody);
  } catch {
    // asserted by the caller
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(headers)?.[1] ?? 0), headers, body: responseBody, json };
}

for (const backend of ['postgres', 'embedded'] as const) {
  describe(`hostile input on ${backend}`, () => {
    let api: TestApi;
    let user: Awaited<ReturnType<typeof signUp>>;
    let taskId: string;
    before(async () => {
      api = await startTestApi({ embedded: backend === 'embedded' });
      user = await signUp(api);
      const task = await api.request('POST', '/tasks', { token: user.token, body: { title: 'a task' } });
      taskId = task.json.id;
    });
    after(async () => {
      await api.close();
    });

    test('a NUL character in any string the API stores is a 400 naming the field, on every route that stores one', async () => {
      const admin = { token: ADMIN_TOKEN };
      const signedIn = { token: user.token };
      const at = new Date(Date.now() + 3_600_000).toISOString();
      const cases: Array<[string, string, { body?: unknown; token?: string }, RegExp]> = [
        [
          'POST',
          '/auth/register',
          { body: { email: `nul-${Date.now()}@example.com`, password: 'long enough password', displayName: `Ada${NUL}` } },
          /body\.displayName/,
        ],
        ['POST', '/tasks', { ...signedIn, body: { title: `milk${NUL}` } }, /body\.title/],
        ['POST', '/tasks', { ...signedIn, body: { title: 'milk', notes: `x${NUL}y` } }, /body\.notes/],
        ['PATCH', `/tasks/${taskId}`, { ...signedIn, body: { title: `${NUL}` } }, /body\.title/],
        ['POST', '/me/devices', { ...signedIn, body: { token: `ExponentPushToken[ab${NUL}cd]`, platform: 'ios' } }, /body\.token/],
        ['DELETE', `/me/devices/${encodeURIComponent(`ExponentPushToken[ab${NUL}cd]`)}`, signedIn, /params\.token/],
        ['POST', '/admin/maintenance', { ...admin, body: { enabled: false, message: `down${NUL}` } }, /body\.message/],
        ['POST', '/admin/cache/clear', { ...admin, body: { scope: `user:a${NUL}b@example.com` } }, /body\.scope/],
        ['POST', '/admin/notifications/send', { ...admin, body: { title: `t${NUL}`, body: 'b' } }, /body\.title/],
        ['POST', '/admin/notifications/send', { ...admin, body: { title: 't', body: 'b', data: { [`k${NUL}`]: 1 } } }, /body\.data/],
        ['POST', '/admin/notifications/send', { ...admin, body: { title: 't', body: 'b', data: { k: [`v${NUL}`] } } }, /body\.data\.k\.0/],
        ['POST', '/admin/notifications/schedule', { ...admin, body: { scheduledFor: at, title: 't', body: `b${NUL}` } }, /body\.body/],
      ];
      for (const [method, path, options, field] of cases) {
        const response = await api.request(method, path, options);
        assertEnvelope(response, 400, 'SHIP_ERR_VALIDATION', `${method} ${path} ${JSON.stringify(options.body)}`);
        assert.match(response.json.error.message, field);
      }
      assert.equal((await api.request('GET', '/health')).status, 200);
    });

    test('a lone UTF-16 surrogate in notification data is a 400, not a 500 from jsonb', async () => {
      const response = await api.request('POST', '/admin/notifications/send', { token: ADMIN_TOKEN, raw: '{"title":"t","body":"b","data":{"k":"\\ud800"}}' });
      assertEnvelope(response, 400, 'SHIP_ERR_VALIDATION', 'lone surrogate');
      assert.match(response.json.error.message, /body\.data\.k/);
    });

    test('notification data nested thousands of levels deep is a 400, and the server keeps answering', async () => {
      for (const depth of [40, 5_000, 20_000]) {
        const raw = `{"title":"t","body":"b","data":{"k":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
        for (const path of ['/admin/notifications/send', '/admin/notifications/schedule']) {
          const response = await api.request('POST', path, { token: ADMIN_TOKEN, raw });
          assertEnvelope(response, 400, 'SHIP_ERR_VALIDATION', `${path} depth ${depth}`);
          assert.match(response.json.error.message, /nested/);
        }
      }
      // Deep JSON where a flat value is expected is refused the same way.
      const deepTitle = await api.request('POST', '/tasks', { token: user.token, raw: `{"title":${'['.repeat(10_000)}${']'.repeat(10_000)}}` });
      assertEnvelope(deepTitle, 400, 'SHIP_ERR_VALIDATION', 'deep title');
      assert.equal((await api.request('GET', '/health')).status, 200);
    });

    test('a due date PostgreSQL cannot store is a 400 naming dueDate', async () => {
      for (const dueDate of ['0000-01-01', '0000-02-29']) {
        const created = await api.request('POST', '/tasks', { token: user.token, body: { title: 'x', dueDate } });
        assertEnvelope(created, 400, 'SHIP_ERR_VALIDATION', `POST dueDate ${dueDate}`);
        assert.match(created.json.error.message, /body\.dueDate/);
        const changed = await api.request('PATCH', `/tasks/${taskId}`, { token: user.token, body: { dueDate } });
        assertEnvelope(changed, 400, 'SHIP_ERR_VALIDATION', `PATCH dueDate ${dueDate}`);
      }
      const ok = await api.request('POST', '/tasks', { token: user.token, body: { title: 'far away', dueDate: '9999-12-31' } });
      assert.equal(ok.status, 201, ok.text);
    });

    test('a cursor shaped like one this API issues but naming no real position is a 400', async () => {
      const cursors = [
        Buffer.from(`123.${'-'.repeat(36)}`).toString('base64url'),
        Buffer.from(`123.${'a'.repeat(36)}`).toString('base64url'),
        Buffer.from(`999999999999999999.${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)}`).toString('base64url'),
        'not a cursor',
      ];
      for (const cursor of cursors) {
        const response = await api.request('GET', `/tasks?cursor=${encodeURIComponent(cursor)}`, { token: user.token });
        if (response.status === 200) continue; // a real-looking position far in the future simply lists everything
        assertEnvelope(response, 400, 'SHIP_ERR_VALIDATION', `cursor ${cursor}`);
        assert.match(response.json.error.message, /cursor/);
      }
    });

    test('safety net: a value the database refuses as data (SQLSTATE class 22) is a 400 envelope, not a 500', async () => {
      // Stands for a route whose schema let something through: the real database, the real error handler.
      const app = Fastify();
      registerErrorHandling(app);
      const { pool } = api.server.database;
      const refused: Array<[string, unknown]> = [
        ['SELECT $1::date AS value', '0000-01-01'],
        ['SELECT $1::text AS value', `a${NUL}b`],
        ['SELECT $1::jsonb AS value', '"\\ud800"'],
        ['SELECT $1::uuid AS value', '------------------------------------'],
        ['SELECT $1::int AS value', '99999999999'],
      ];
      app.get('/probe/:index', async (request) => {
        const [sql, parameter] = refused[Number((request.params as { index: string }).index)]!;
        return (await pool.query(sql, [parameter])).rows[0];
      });
      try {
        for (const [index, [sql]] of refused.entries()) {
          const response = await app.inject({ method: 'GET', url: `/probe/${index}` });
          assert.equal(response.statusCode, 400, `${sql}: ${response.body}`);
          assert.equal(response.json().error.code, 'SHIP_ERR_VALIDATION', sql);
          assert.match(response.json().error.message, /database error 22[0-9A-Z]{3}/, sql);
        }
      } finally {
        await app.close();
      }
    });

    test('two Authorization headers are a 400, not served with the first', async () => {
      const other = await signUp(api);
      const response = await rawExchange(api.url, `GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${user.token}\r\nAuthorization: Bearer ${other.token}`);
      assert.equal(response.status, 400, response.body);
      assert.equal(response.json.error.code, 'SHIP_ERR_VALIDATION');
      assert.match(response.json.error.message, /Authorization/);
    });

    test('a JSON body declared in a charset other than UTF-8 is a 415', async () => {
      const body = JSON.stringify({ title: 'x' });
      for (const charset of ['utf-16', 'UTF-16LE', 'iso-8859-1']) {
        const response = await api.request('POST', '/tasks', {
          token: user.token,
          headers: { 'content-type': `application/json; charset=${charset}` },
          raw: body,
        });
        assertEnvelope(response, 415, 'SHIP_ERR_UNSUPPORTED_MEDIA_TYPE', charset);
      }
      for (const charset of ['utf-8', 'UTF8', '"utf-8"']) {
        const response = await api.request('POST', '/tasks', {
          token: user.token,
          headers: { 'content-type': `application/json; charset=${charset}` },
          raw: body,
        });
        assert.equal(response.status, 201, `${charset}: ${response.text}`);
      }
    });

    test('414 and 431 come in the same error envelope as every other status', async () => {
      const longParam = await api.request('GET', `/tasks/${'a'.repeat(500)}`, { token: user.token });
      assertEnvelope(longParam, 414, 'SHIP_ERR_URI_TOO_LONG', 'long path parameter');
      const hugeHeader = await rawExchange(api.url, `GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: ${'a'.repeat(40_000)}`);
      assert.equal(hugeHeader.status, 431, hugeHeader.body);
      assert.equal(hugeHeader.json.error.code, 'SHIP_ERR_HEADERS_TOO_LARGE', hugeHeader.body);
      assert.equal(typeof hugeHeader.json.error.message, 'string');
      const badUrl = await api.request('GET', '/tasks/%E0%A4%A', { token: user.token });
      assertEnvelope(badUrl, 400, 'SHIP_ERR_VALIDATION', 'malformed percent-encoding');
      assert.equal((await api.request('GET', '/health')).status, 200);
    });

    test('a client X-Request-Id is adopted only when short and plain; otherwise the server makes one', async () => {
      const plain = await api.request('GET', '/health', { headers: { 'x-request-id': 'lb-7f3a.2_x' } });
      assert.equal(plain.headers.get('x-request-id'), 'lb-7f3a.2_x');
      for (const hostile of ['a'.repeat(3000), '<script>alert(1)</script>', 'has space', 'a'.repeat(65)]) {
        const response = await api.request('GET', '/health', { headers: { 'x-request-id': hostile } });
        const id = response.headers.get('x-request-id') ?? '';
        assert.ok(id !== hostile, `adopted ${hostile.slice(0, 20)}…`);
        assert.match(id, /^[0-9a-f-]{36}$/, `fresh id for ${hostile.slice(0, 20)}`);
      }
      const exactly64 = 'b'.repeat(64);
      assert.equal((await api.request('GET', '/health', { headers: { 'x-request-id': exactly64 } })).headers.get('x-request-id'), exactly64);
    });
  });
}
