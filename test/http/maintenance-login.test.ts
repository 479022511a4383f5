/**
 * A login still in flight when maintenance starts does not come out of it signed in: the
 * session insert itself checks the maintenance switch. The maintenance run's smoke tests,
 * let through by an admin token, still get their session.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ADMIN_TOKEN, signUp, startTestApi, type TestApi } from '../helpers/api.ts';
import { eventually } from '../helpers/patience.ts';

let api: TestApi;
before(async () => {
  api = await startTestApi();
});
after(async () => {
  await api.close();
});

test('a login held up until maintenance is on gets 503 and creates no session', async () => {
  const user = await signUp(api);
  const database = await api.server.database.pool.connect();
  try {
    const sessionsBefore = (await database.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions WHERE user_id = $1::uuid', [user.id])).rows[0]!.n;
    // Holds the login at its session insert: past the gate and the password check, not yet signed in.
    await database.query('BEGIN');
    await database.query('LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE');
    const login = api.request('POST', '/auth/login', { body: { email: user.email, password: user.password } });
    const monitor = await api.server.database.pool.connect();
    try {
      await eventually('the login to wait at the session insert', async () => {
        const { rows } = await monitor.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO sessions%'");
        return rows.length > 0 ? true : undefined;
      });
      await monitor.query("UPDATE app_state SET maintenance_enabled = true, maintenance_message = 'Back soon', maintenance_since = now()");
    } finally {
      monitor.release();
    }
    await database.query('ROLLBACK');
    const answer = await login;
    assert.equal(answer.status, 503, answer.text);
    assert.equal(answer.json.error.code, 'SHIP_ERR_MAINTENANCE');
    const sessionsAfter = (await database.query<{ n: number }>('SELECT count(*)::int AS n FROM sessions WHERE user_id = $1::uuid', [user.id])).rows[0]!.n;
    assert.equal(sessionsAfter, sessionsBefore, 'no session was created');

    // The maintenance run's smoke test, let through by an admin token, still signs in.
    const smoke = await eventually('a login with the bypass header to succeed', async () => {
      const reply = await api.request('POST', '/auth/login', {
        body: { email: user.email, password: user.password },
        headers: { 'x-maintenance-bypass': ADMIN_TOKEN },
      });
      return reply.status === 200 ? reply : undefined;
    });
    assert.equal(typeof smoke.json.token, 'string');
  } finally {
    await database.query('UPDATE app_state SET maintenance_enabled = false, maintenance_message = NULL, maintenance_since = NULL');
    database.release();
  }
});
