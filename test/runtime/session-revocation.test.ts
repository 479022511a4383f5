/**
 * Sessions are cached in each instance's memory (src/domain/session-cache.ts), so revocation
 * must reach every instance: two servers on one database, a session warmed into the cache of
 * both, then ended on one of them or behind their backs (the CLI's `user revoke`, an erasure,
 * a DBA). Once the other instance has received the NOTIFY its very next request is refused —
 * no waiting, no retry. How fast the NOTIFY arrives is measured by bench/propagation.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../../src/config/index.ts';
import { hashToken } from '../../src/domain/secrets.ts';
import { revokeAllSessions } from '../../src/domain/sessions.ts';
import { createLogger } from '../../src/log.ts';
import { startServer, type RunningServer } from '../../src/runtime/server.ts';
import { ADMIN_TOKEN } from '../helpers/api.ts';
import { call } from '../helpers/http-call.ts';
import { eventually, BUSY_MACHINE_ENV } from '../helpers/patience.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';

describe('session revocation with sessions cached on two instances', () => {
  let database: TestDatabase;
  /** A connection of nobody's: the CLI, an erasure job or a DBA. */
  let outside: pg.Pool;
  const servers: RunningServer[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  let counter = 0;

  before(async () => {
    database = await createTestDatabase();
    outside = new pg.Pool({ connectionString: database.url, max: 2 });
    for (let i = 0; i < 2; i += 1) {
      const state = await createStateDir();
      cleanups.push(state.cleanup);
      const config = loadConfig({ PORT: '0', STATE_DIR: state.path, ADMIN_TOKEN, LOG_LEVEL: 'silent', DATABASE_URL: database.url, ...BUSY_MACHINE_ENV });
      servers.push(await startServer(config, createLogger('silent'), { migrate: i === 0 }));
    }
    // The cache is used only once each instance's LISTEN self-test has passed.
    await eventually('both instances trust their session cache', () => (servers.every((server) => server.live.sessions.active) ? true : undefined));
  });

  after(async () => {
    for (const server of servers) await server.close();
    await outside.end();
    for (const cleanup of cleanups) await cleanup();
    await database.drop();
  });

  const [a, b] = [() => servers[0]!, () => servers[1]!];

  async function newUser(): Promise<{ id: string; token: string; email: string; password: string }> {
    const email = `revoke${++counter}-${Date.now()}@example.com`;
    const password = 'correct horse battery';
    const reply = await call(a().url, 'POST', '/auth/register', { body: { email, password } });
    assert.equal(reply.status, 201, JSON.stringify(reply.json));
    return { id: reply.json.user.id as string, token: reply.json.token as string, email, password };
  }

  /** Authenticated requests on both instances until each has answered one from its cache. */
  async function warm(token: string): Promise<void> {
    for (const server of servers) {
      const before = server.live.sessions.stats.hits;
      for (let i = 0; i < 2; i += 1) assert.equal((await call(server.url, 'GET', '/tasks', { token })).status, 200);
      assert.ok(server.live.sessions.stats.hits > before, 'the second request was answered from the session cache');
    }
  }

  /** Runs `revoke` and waits until `server` has heard a session change; then `token` must be refused there at once. */
  async function expectRefusedAfter(server: RunningServer, token: string, revoke: () => Promise<void>): Promise<void> {
    const heard = server.live.sessions.stats.notifications;
    await revoke();
    await eventually('the session change reached the other instance', () => (server.live.sessions.stats.notifications > heard ? true : undefined));
    const reply = await call(server.url, 'GET', '/tasks', { token });
    assert.equal(reply.status, 401, `a revoked session was still accepted: ${JSON.stringify(reply.json)}`);
  }

  test('logout on one instance ends the session on the other', async () => {
    const user = await newUser();
    await warm(user.token);
    await expectRefusedAfter(b(), user.token, async () => {
      assert.equal((await call(a().url, 'POST', '/auth/logout', { token: user.token })).status, 204);
    });
    assert.equal((await call(a().url, 'GET', '/tasks', { token: user.token })).status, 401, 'and on the instance that logged out');
  });

  test('a password reset ends every session of the user on every instance', async () => {
    const user = await newUser();
    await warm(user.token);
    const resetToken = `reset-${Date.now()}-${counter}`;
    await outside.query(`INSERT INTO password_reset_tokens (user_id, token_hash, expires_at) VALUES ($1::uuid, $2::bytea, now() + interval '1 hour')`, [
      user.id,
      hashToken(resetToken),
    ]);
    await expectRefusedAfter(b(), user.token, async () => {
      const reply = await call(a().url, 'POST', '/auth/password-reset/confirm', { body: { token: resetToken, password: 'another horse battery' } });
      assert.equal(reply.status, 204, JSON.stringify(reply.json));
    });
  });

  test("an operator's revoke from outside the servers (the CLI's `user revoke`) ends the session on both", async () => {
    const user = await newUser();
    await warm(user.token);
    const heard = servers.map((server) => server.live.sessions.stats.notifications);
    await revokeAllSessions(outside, user.id);
    for (const [i, server] of servers.entries()) {
      await eventually('the revocation reached the instance', () => (server.live.sessions.stats.notifications > heard[i]! ? true : undefined));
      assert.equal((await call(server.url, 'GET', '/tasks', { token: user.token })).status, 401);
    }
  });

  test('deleting the user (an erasure) ends the session on both', async () => {
    const user = await newUser();
    await warm(user.token);
    await expectRefusedAfter(b(), user.token, async () => {
      await outside.query('DELETE FROM users WHERE id = $1::uuid', [user.id]);
    });
    assert.equal((await call(a().url, 'GET', '/tasks', { token: user.token })).status, 401);
  });

  test('terminating one session from another device ends it on both instances and leaves the other session working', async () => {
    const user = await newUser();
    const login = await call(a().url, 'POST', '/auth/login', { body: { email: user.email, password: user.password } });
    assert.equal(login.status, 200);
    const other = login.json.token as string;
    await warm(user.token);
    await warm(other);
    const sessions = await call(b().url, 'GET', '/me/sessions', { token: other });
    assert.equal(sessions.status, 200, JSON.stringify(sessions.json));
    const list = (sessions.json.sessions ?? []) as Array<{ id: string; current: boolean }>;
    const target = list.find((session) => !session.current);
    assert.ok(target, `the first session is listed: ${JSON.stringify(sessions.json)}`);
    await expectRefusedAfter(a(), user.token, async () => {
      assert.equal((await call(b().url, 'DELETE', `/me/sessions/${target.id}`, { token: other })).status, 204);
    });
    assert.equal((await call(b().url, 'GET', '/tasks', { token: user.token })).status, 401);
    for (const server of servers) assert.equal((await call(server.url, 'GET', '/tasks', { token: other })).status, 200);
  });

  test('while the LISTEN connection is down, sessions are read from the database: a revocation in the gap is not missed', async () => {
    const user = await newUser();
    await warm(user.token);
    const distrusts = servers.map((server) => server.live.sessions.stats.distrusts);
    await outside.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'shipshape-listen' AND datname = current_database()`);
    await eventually('both instances noticed their LISTEN connection drop', () =>
      servers.every((server, i) => server.live.sessions.stats.distrusts > distrusts[i]!) ? true : undefined,
    );
    // Revoked without any instance hearing it: their listeners are down.
    await revokeAllSessions(outside, user.id);
    for (const server of servers) assert.equal((await call(server.url, 'GET', '/tasks', { token: user.token })).status, 401);
    await eventually('both instances trust their cache again after reconnecting', () =>
      servers.every((server) => server.live.sessions.active) ? true : undefined,
    );
    for (const server of servers) assert.equal((await call(server.url, 'GET', '/tasks', { token: user.token })).status, 401);
  });
});
