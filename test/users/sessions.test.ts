/**
 * Session control for users (list, end one, end all) and login protection: increasing delay
 * per account after repeated failures, the same for unknown emails, and the audit trail.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { queryAudit } from '../../src/domain/audit-query.ts';
import { defaultThrottlePolicy, delayAfterFailures, loginDelay } from '../../src/domain/login-throttle.ts';
import { signUp, startTestApi, type TestApi } from '../helpers/api.ts';

describe('sessions and login protection', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ env: { TRUST_PROXY: 'true' } });
  });
  after(async () => {
    await api.close();
  });

  const login = (email: string, password: string, ip = '203.0.113.10') =>
    api.request('POST', '/auth/login', { body: { email, password }, headers: { 'x-forwarded-for': ip, 'user-agent': 'TasksApp/2.1 (iPhone)' } });

  test('GET /me/sessions lists live sessions with the current one marked, and no token material', async () => {
    const user = await signUp(api);
    const phone = await login(user.email, user.password);
    const listed = await api.request('GET', '/me/sessions', { token: phone.json.token });
    assert.equal(listed.status, 200);
    assert.equal(listed.json.sessions.length, 2);
    const current = listed.json.sessions.filter((s: { current: boolean }) => s.current);
    assert.equal(current.length, 1);
    assert.equal(current[0].userAgent, 'TasksApp/2.1 (iPhone)');
    assert.equal(current[0].ip, '203.0.113.10');
    assert.doesNotMatch(listed.text, /token_?hash|tokenHash/i);
  });

  test("DELETE /me/sessions/:id ends that session only; another user's session is a 404", async () => {
    const user = await signUp(api);
    const other = await signUp(api);
    const second = await login(user.email, user.password);
    const sessions = (await api.request('GET', '/me/sessions', { token: user.token })).json.sessions as Array<{ id: string; current: boolean }>;
    const secondId = sessions.find((s) => !s.current)!.id;

    const foreign = await api.request('DELETE', `/me/sessions/${secondId}`, { token: other.token });
    assert.equal(foreign.status, 404);
    assert.equal((await api.request('GET', '/me', { token: second.json.token })).status, 200, 'a stranger cannot end it');

    assert.equal((await api.request('DELETE', `/me/sessions/${secondId}`, { token: user.token })).status, 204);
    assert.equal((await api.request('GET', '/me', { token: second.json.token })).status, 401);
    assert.equal((await api.request('GET', '/me', { token: user.token })).status, 200);
    assert.equal((await api.request('DELETE', '/me/sessions/not-a-uuid', { token: user.token })).status, 400);
  });

  test('POST /auth/logout-all ends every session of the user and is audited', async () => {
    const user = await signUp(api);
    const second = await login(user.email, user.password);
    const response = await api.request('POST', '/auth/logout-all', { token: user.token });
    assert.equal(response.status, 200);
    assert.equal(response.json.revoked, 2);
    assert.equal((await api.request('GET', '/me', { token: user.token })).status, 401);
    assert.equal((await api.request('GET', '/me', { token: second.json.token })).status, 401);
    const revoked = await queryAudit(api.server.database.pool, { userId: user.id, action: 'auth.sessions.revoked', limit: 5 });
    assert.equal(revoked.length, 1);
    assert.equal(revoked[0]!.details.count, 2);
  });

  test('the delay grows with each failure beyond the free ones, and is capped', () => {
    const delays = Array.from({ length: 12 }, (_, failures) => delayAfterFailures(failures));
    assert.deepEqual(delays.slice(0, defaultThrottlePolicy.freeFailures), [0, 0, 0]);
    for (let i = defaultThrottlePolicy.freeFailures + 1; i < delays.length; i += 1) assert.ok(delays[i]! >= delays[i - 1]!);
    assert.ok(delays[4]! > delays[3]!);
    assert.equal(delays.at(-1), defaultThrottlePolicy.maxDelayMs);
  });

  test('failed logins build up a per-account delay, for unknown emails too, and a success clears it', async () => {
    const pool = api.server.database.pool;
    const user = await signUp(api);
    const unknown = `ghost-${Date.now()}@example.com`;
    for (const email of [user.email, unknown]) {
      for (let attempt = 1; attempt <= 4; attempt += 1) {
        const failed = await login(email, 'not the password', `203.0.113.${20 + attempt}`);
        assert.equal(failed.status, 401);
      }
    }
    const known = await loginDelay(pool, user.email.toUpperCase());
    const ghost = await loginDelay(pool, unknown);
    assert.equal(known.failures, 4);
    assert.ok(known.delayMs > 0, 'the next attempt on the account is delayed');
    assert.deepEqual(ghost, known, 'an unknown email is throttled exactly like a real one');

    const failures = await queryAudit(pool, { userId: user.id, action: 'auth.login.failed', limit: 10 });
    assert.deepEqual(
      failures.map((entry) => entry.details.consecutiveFailures),
      [4, 3, 2, 1],
    );

    assert.equal((await login(user.email, user.password)).status, 200);
    assert.deepEqual(await loginDelay(pool, user.email), { failures: 0, delayMs: 0 });
    const succeeded = await queryAudit(pool, { userId: user.id, action: 'auth.login.succeeded', limit: 1 });
    assert.equal(succeeded.length, 1);
  });
});
