/**
 * The server cache seen through HTTP: `GET /tasks` (first page) is served from the cache
 * (`x-cache: hit`) until a write, and every write is visible to the very next read; clearing a
 * scope through the admin API or the CLI retires its entries. With the in-process LRU on
 * PostgreSQL and on the embedded database, and with Redis.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { ADMIN_TOKEN, signUp, startTestApi, type TestApi } from '../helpers/api.ts';
import { eventually } from '../helpers/patience.ts';
import { runCli } from '../helpers/cli.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const variants = [
  { name: 'in-process LRU on PostgreSQL', embedded: false, redis: false },
  { name: 'in-process LRU on the embedded database', embedded: true, redis: false },
  { name: 'Redis on PostgreSQL', embedded: false, redis: true },
] as const;

for (const variant of variants) {
  describe(`task-list cache: ${variant.name}`, () => {
    let api: TestApi;
    const prefix = `test-${randomUUID()}:`;
    before(async () => {
      api = await startTestApi({ embedded: variant.embedded, env: variant.redis ? { REDIS_URL, REDIS_PREFIX: prefix } : {} });
    });
    after(async () => {
      await api.close();
      if (variant.redis) {
        const redis = new Redis(REDIS_URL);
        const keys = await redis.keys(`${prefix}*`);
        if (keys.length > 0) await redis.del(...keys);
        await redis.quit();
      }
    });

    const list = async (token: string, query = '') => {
      const response = await api.request('GET', `/tasks${query}`, { token });
      assert.equal(response.status, 200);
      return {
        titles: (response.json.tasks as Array<{ title: string }>).map((task) => task.title),
        cache: response.headers.get('x-cache'),
        json: response.json,
      };
    };

    test('the first page is cached until a write; each write shows in the very next read', async () => {
      const user = await signUp(api);
      assert.equal((await list(user.token)).cache, 'miss');
      assert.equal((await list(user.token)).cache, 'hit');

      const created = await api.request('POST', '/tasks', { token: user.token, body: { title: 'Buy milk' } });
      assert.equal(created.status, 201);
      const afterCreate = await list(user.token);
      assert.deepEqual(afterCreate.titles, ['Buy milk']);
      const hit = await list(user.token);
      assert.equal(hit.cache, 'hit');
      assert.deepEqual(hit.json, afterCreate.json, 'a hit answers byte-for-byte what the database did');

      await api.request('PATCH', `/tasks/${created.json.id}`, { token: user.token, body: { title: 'Buy oat milk' } });
      assert.deepEqual((await list(user.token)).titles, ['Buy oat milk']);
      await api.request('DELETE', `/tasks/${created.json.id}`, { token: user.token });
      assert.deepEqual((await list(user.token)).titles, []);
      // Other page sizes and later pages are separate (later pages are never cached).
      assert.equal((await list(user.token, '?limit=5')).cache, 'miss');
      const page2 = await api.request('GET', `/tasks?cursor=${'x'.repeat(8)}`, { token: user.token });
      assert.equal(page2.headers.get('x-cache'), null);
    });

    test('under concurrent reads and writes, a read that starts after a write’s response includes it', async () => {
      const user = await signUp(api);
      let stop = false;
      const readers = Array.from({ length: 2 }, async () => {
        while (!stop) await list(user.token, '?limit=100');
      });
      const writers = Array.from({ length: 2 }, async (_, writer) => {
        for (let i = 0; i < 6; i += 1) {
          const title = `w${writer}-${i}`;
          assert.equal((await api.request('POST', '/tasks', { token: user.token, body: { title } })).status, 201);
          assert.ok((await list(user.token, '?limit=100')).titles.includes(title), `${title} missing right after its 201`);
        }
      });
      await Promise.all(writers);
      stop = true;
      await Promise.all(readers);
    });

    test('POST /admin/cache/clear retires the scope’s entries: tasks for everyone, user:<email> for one user', async () => {
      const [alice, bob] = [await signUp(api), await signUp(api)];
      for (const user of [alice, bob]) {
        await list(user.token);
        assert.equal((await list(user.token)).cache, 'hit');
      }
      const userClear = await api.request('POST', '/admin/cache/clear', { token: ADMIN_TOKEN, body: { scope: `user:${alice.email}` } });
      assert.equal(userClear.status, 200);
      assert.equal(userClear.json.scope, `user:${alice.email}`);
      assert.equal((await list(alice.token)).cache, 'miss');
      assert.equal((await list(bob.token)).cache, 'hit');

      const epochBefore = (await api.request('GET', '/config')).json.cacheEpochs.tasks;
      const cleared = await api.request('POST', '/admin/cache/clear', { token: ADMIN_TOKEN, body: { scope: 'tasks' } });
      assert.equal(cleared.status, 200);
      assert.equal(cleared.json.epoch, epochBefore + 1);
      if (variant.redis) assert.ok(cleared.json.flushed >= 1, 'the shared store was flushed, not just bypassed');
      // An in-process store is also flushed by the epoch change reaching the instance (LISTEN or
      // pub/sub), which may come first and leave the route nothing to free: any count is right.
      else assert.equal(typeof cleared.json.flushed, 'number');
      assert.equal((await api.request('GET', '/config')).json.cacheEpochs.tasks, epochBefore + 1, 'apps see the new epoch');
      assert.equal((await list(alice.token)).cache, 'miss');
      assert.equal((await list(bob.token)).cache, 'miss');

      for (const scope of ['everything', 'user:', 42]) {
        const bad = await api.request('POST', '/admin/cache/clear', { token: ADMIN_TOKEN, body: { scope } });
        assert.equal(bad.status, 400, String(scope));
      }
      const unknown = await api.request('POST', '/admin/cache/clear', { token: ADMIN_TOKEN, body: { scope: 'user:nobody@example.com' } });
      assert.equal(unknown.status, 404);
    });

    if (!variant.embedded) {
      test('`shipshape cache clear` (a low-risk procedure) reaches the running server: its next read of that scope is a miss', async () => {
        const user = await signUp(api);
        await list(user.token);
        assert.equal((await list(user.token)).cache, 'hit');
        const state = await mkdtemp(path.join(tmpdir(), 'shipshape-cli-'));
        try {
          const env = {
            DATABASE_URL: api.config.databaseUrl!,
            API_URL: api.url,
            STATE_DIR: state,
            SHIPSHAPE_OPERATOR: 'test-operator',
            ...(variant.redis ? { REDIS_URL, REDIS_PREFIX: prefix } : {}),
          };
          const result = await runCli(['cache', 'clear', '--scope', `user:${user.email}`, '--json'], env);
          assert.equal(result.code, 0, result.stderr + result.stdout);
          const report = JSON.parse(result.stdout);
          assert.equal(report.state, 'succeeded');
          assert.equal(report.procedure.risk, 'low');
          const bump = report.steps.find((step: { id: string }) => step.id === 'bump-epoch');
          assert.equal(bump.output.epoch, 1);
          assert.match(bump.output.storedScope, /^user:[0-9a-f-]{36}$/, 'stored by id, never by email');
          if (variant.redis) assert.ok(report.steps.find((step: { id: string }) => step.id === 'flush-server-cache').output.flushed >= 1);
          // The epoch reaches the server by NOTIFY (or Redis); wait for it, without a timing assertion.
          await eventually('the clear reaching the server', async () => ((await list(user.token)).cache === 'miss' ? true : undefined), { pollMs: 20 });

          const tasks = await runCli(['cache', 'clear', '--scope', 'tasks', '--json'], env);
          assert.equal(tasks.code, 0, tasks.stderr);
          const verified = JSON.parse(tasks.stdout).verification.find((check: { name: string }) => /GET \/config/.test(check.name));
          assert.equal(verified.ok, true);
          assert.match(verified.detail, /reports tasks = \d+/);

          // Nothing answers at API_URL: the epoch is stored, but whether apps see it could not be
          // checked — "unverified" and exit 5, never a ✓.
          const unseen = await runCli(['cache', 'clear', '--scope', 'tasks'], { ...env, API_URL: 'http://127.0.0.1:9' });
          assert.equal(unseen.code, 5, unseen.stderr + unseen.stdout);
          assert.match(unseen.stdout, /· unverified/);
          assert.match(
            unseen.stdout,
            /\? verify apps see the new epoch in GET \/config: unverified: the API at http:\/\/127\.0\.0\.1:9\/config did not answer/,
          );
          assert.doesNotMatch(unseen.stdout, /✓ verify apps see/);
          assert.match(unseen.stderr, /error\[SHIP_ERR_UNVERIFIED\]/);

          const bad = await runCli(['cache', 'clear', '--scope', 'everything'], env);
          assert.equal(bad.code, 2);
          assert.match(bad.stderr, /all, tasks, preferences or user:<email>/);
          const missing = await runCli(['cache', 'clear', '--scope', 'user:nobody@example.com'], env);
          assert.equal(missing.code, 3, 'an unknown account is a prerequisite not met');
          assert.match(missing.stderr + missing.stdout, /no account has the email/);
        } finally {
          await rm(state, { recursive: true, force: true });
        }
      });
    }
  });
}
