/**
 * GET and POST /tasks for a session that is not cached sign in and do their work in one
 * statement (tasks.ts: `signInListingFirstPage`, `signInCreatingTask`). A session seen for the
 * first time is never cached, so each fresh token below takes that path. It must answer exactly
 * what signing in first and then reading or writing answers: the same 401s (before any input
 * error, with nothing written), the same maintenance and read-only answers, the same bodies
 * and cursors, and a task-list cache that stays correct.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashToken } from '../../src/domain/secrets.ts';
import { createTask, listFirstPageUnlessHeld, listFirstPageVersioned, listTasks, signInCreatingTask, signInListingFirstPage } from '../../src/domain/tasks.ts';
import { ADMIN_TOKEN, signUp, startTestApi, type TestApi } from '../helpers/api.ts';

describe('GET/POST /tasks in one statement with the sign-in', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(async () => api?.close());

  const pool = () => api.server.database.pool;
  const taskCount = async (userId: string) =>
    (await pool().query<{ n: number }>('SELECT count(*)::int AS n FROM tasks WHERE user_id = $1', [userId])).rows[0]?.n;
  /** A user with `count` tasks, and a second session (token) of theirs that no request has used yet. */
  const userWithTasks = async (count: number) => {
    const user = await signUp(api);
    for (let n = 0; n < count; n += 1)
      await createTask(pool(), user.id, { title: `task ${n}`, notes: n % 2 ? `note ${n}` : null, dueDate: n % 3 ? null : '2026-12-24' });
    const login = await api.request('POST', '/auth/login', { body: { email: user.email, password: user.password } });
    assert.equal(login.status, 200);
    return { ...user, fresh: login.json.token as string };
  };

  test('a revoked or expired session is a 401 before any input error, and POST writes nothing', async () => {
    const revoked = await userWithTasks(2);
    await pool().query('UPDATE sessions SET revoked_at = now() WHERE user_id = $1', [revoked.id]);
    const expired = await userWithTasks(2);
    await pool().query("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1", [expired.id]);
    for (const user of [revoked, expired]) {
      for (const query of ['', '?limit=5', '?limit=0', '?cursor=not!a!cursor', '?unknown=1']) {
        const read = await api.request('GET', `/tasks${query}`, { token: user.fresh });
        assert.equal(read.status, 401, `GET /tasks${query}`);
        assert.equal(read.json.error.code, 'SHIP_ERR_UNAUTHENTICATED');
      }
      for (const body of [{ title: 'not written' }, { title: '' }, { nope: true }]) {
        const write = await api.request('POST', '/tasks', { token: user.fresh, body });
        assert.equal(write.status, 401, `POST /tasks ${JSON.stringify(body)}`);
      }
      assert.equal(await taskCount(user.id), 2, 'nothing was written for a dead session');
    }
  });

  test('input errors of a live session are still 400s, answered after signing in', async () => {
    const user = await userWithTasks(1);
    assert.equal((await api.request('GET', '/tasks?limit=0', { token: user.fresh })).status, 400);
    assert.equal((await api.request('POST', '/tasks', { token: user.fresh, body: { title: '' } })).status, 400);
    // What only parseInput refuses (not the schema) must not reach the one statement either.
    const nul = await api.request('POST', '/tasks', { token: (await userWithTasks(0)).fresh, body: { title: 'milk\u0000' } });
    assert.equal(nul.status, 400);
    assert.match(nul.json.error.message, /body\.title/);
    assert.equal(await taskCount(user.id), 1);
  });

  test('the first page, its cursor and the cache answer what the two-statement path answers', async () => {
    const user = await userWithTasks(7);
    const first = await api.request('GET', '/tasks?limit=3', { token: user.fresh });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-cache'), 'miss');
    const expected = JSON.parse(JSON.stringify(await listTasks(pool(), user.id, { limit: 3 })));
    assert.deepEqual(first.json, expected);
    // The same session again (now from the session cache, then the task-list cache): the same body.
    const again = await api.request('GET', '/tasks?limit=3', { token: user.fresh });
    assert.equal(again.headers.get('x-cache'), 'hit');
    assert.deepEqual(again.json, expected);
    const second = await api.request('GET', `/tasks?limit=3&cursor=${first.json.nextCursor}`, { token: user.fresh });
    assert.deepEqual(second.json, JSON.parse(JSON.stringify(await listTasks(pool(), user.id, { limit: 3, cursor: first.json.nextCursor }))));
    // A user without tasks: an empty page, no cursor.
    const empty = await userWithTasks(0);
    assert.deepEqual((await api.request('GET', '/tasks', { token: empty.fresh })).json, { tasks: [], nextCursor: null });
  });

  test('POST creates the task as createTask does, and the next read of any session shows it', async () => {
    const user = await userWithTasks(1);
    await api.request('GET', '/tasks', { token: user.token });
    const created = await api.request('POST', '/tasks', { token: user.fresh, body: { title: 'one trip', notes: 'n', done: true, dueDate: '2027-01-02' } });
    assert.equal(created.status, 201);
    assert.deepEqual(Object.keys(created.json).sort(), ['createdAt', 'done', 'dueDate', 'id', 'notes', 'title', 'updatedAt']);
    assert.deepEqual(
      { ...created.json, id: undefined, createdAt: undefined, updatedAt: undefined },
      {
        id: undefined,
        title: 'one trip',
        notes: 'n',
        done: true,
        dueDate: '2027-01-02',
        createdAt: undefined,
        updatedAt: undefined,
      },
    );
    const read = await api.request('GET', '/tasks', { token: user.token });
    assert.equal(read.headers.get('x-cache'), 'miss', 'the insert moved the list version');
    assert.equal(read.json.tasks[0].id, created.json.id);
  });

  test('maintenance: 503 for both; read-only: the read is served and the write refused', async () => {
    const user = await userWithTasks(1);
    const set = async (body: object) => assert.equal((await api.request('POST', '/admin/maintenance', { token: ADMIN_TOKEN, body })).status, 200);
    await set({ enabled: true, message: 'Back soon' });
    try {
      assert.equal((await api.request('GET', '/tasks', { token: user.fresh })).status, 503);
      assert.equal((await api.request('POST', '/tasks', { token: user.fresh, body: { title: 'x' } })).status, 503);
      await set({ enabled: true, mode: 'read-only', message: 'Restoring' });
      assert.equal((await api.request('GET', '/tasks', { token: user.fresh })).status, 200);
      const write = await api.request('POST', '/tasks', { token: user.fresh, body: { title: 'x' } });
      assert.equal(write.status, 503);
      assert.equal(write.json.error.code, 'SHIP_ERR_READ_ONLY');
    } finally {
      await set({ enabled: false });
    }
    assert.equal(await taskCount(user.id), 1);
  });

  test('a session from memory: each read is one statement, which reads the page only if the list moved', async () => {
    assert.ok(api.server.live.sessions.active, 'the session cache is in use (LISTEN is up)');
    const user = await userWithTasks(3);
    assert.equal((await api.request('GET', '/tasks', { token: user.fresh })).headers.get('x-cache'), 'miss');
    const statements: string[] = [];
    const database = pool();
    const query = database.query.bind(database);
    database.query = ((config: unknown, ...rest: unknown[]) => {
      statements.push(typeof config === 'string' ? config : String((config as { text: string }).text));
      return (query as (...args: unknown[]) => unknown)(config, ...rest);
    }) as typeof database.query;
    const readCounting = async () => {
      statements.length = 0;
      const response = await api.request('GET', '/tasks', { token: user.fresh });
      return {
        cache: response.headers.get('x-cache'),
        statements: statements.length,
        titles: response.json.tasks.map((task: { title: string }) => task.title),
      };
    };
    try {
      assert.deepEqual(await readCounting(), { cache: 'hit', statements: 1, titles: ['task 2', 'task 1', 'task 0'] });
      await createTask(database, user.id, { title: 'moved' });
      assert.deepEqual(await readCounting(), { cache: 'miss', statements: 1, titles: ['moved', 'task 2', 'task 1', 'task 0'] });
      assert.deepEqual(await readCounting(), { cache: 'hit', statements: 1, titles: ['moved', 'task 2', 'task 1', 'task 0'] });
      // The cache lost the page (a flush, another instance's Redis restart): read again, still right.
      await api.server.live.cache.flush('tasks');
      assert.deepEqual(await readCounting(), { cache: 'miss', statements: 2, titles: ['moved', 'task 2', 'task 1', 'task 0'] });
    } finally {
      database.query = query;
    }
  });

  test('the domain statements: the page is skipped only while the list is at the version the caller holds', async () => {
    const user = await userWithTasks(4);
    const hash = hashToken(user.fresh);
    const read = await signInListingFirstPage(pool(), hash, { limit: 2 });
    assert.ok(read?.page);
    assert.deepEqual(read.page, await listTasks(pool(), user.id, { limit: 2 }));
    assert.deepEqual({ page: read.page, version: read.listVersion }, await listFirstPageVersioned(pool(), user.id, 2));
    assert.deepEqual(await listFirstPageUnlessHeld(pool(), user.id, 2, undefined), { page: read.page, listVersion: read.listVersion });
    assert.deepEqual(await listFirstPageUnlessHeld(pool(), user.id, 2, read.listVersion), { page: undefined, listVersion: read.listVersion });
    assert.equal(read.auth.user.id, user.id);
    const skipped = await signInListingFirstPage(pool(), hash, { limit: 2, unlessVersion: read.listVersion });
    assert.equal(skipped?.page, undefined);
    assert.equal(skipped?.listVersion, read.listVersion);
    const created = await signInCreatingTask(pool(), hash, { title: 'newest' });
    assert.equal(created?.task.title, 'newest');
    const moved = await signInListingFirstPage(pool(), hash, { limit: 2, unlessVersion: read.listVersion });
    assert.equal(moved?.page?.tasks[0]?.title, 'newest', 'the write moved the version, so the page is read');
    assert.notEqual(moved?.listVersion, read.listVersion);
    assert.deepEqual(await listFirstPageUnlessHeld(pool(), user.id, 2, read.listVersion), { page: moved?.page, listVersion: moved?.listVersion });
    assert.equal(await signInListingFirstPage(pool(), hashToken('not-a-session'), { limit: 2 }), undefined);
    assert.equal(await signInCreatingTask(pool(), hashToken('not-a-session'), { title: 'x' }), undefined);
  });
});
