/**
 * The task-list cache never serves a page older than the last committed write, whatever the
 * interleaving of reads and writes, with the in-process store and with Redis.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createMemoryStore, createRedisStore, type CacheStore } from '../../src/adapters/cache/index.ts';
import { closeRedis, connectRedis, createRedis, type Redis } from '../../src/adapters/redis.ts';
import { createTask, deleteTask, listTasks, updateTask } from '../../src/domain/tasks.ts';
import { TaskListCache, type CachedRead } from '../../src/domain/task-list-cache.ts';
import { createUser } from '../../src/domain/users.ts';
import { withTransaction } from '../../src/db/pool.ts';
import { createLogger } from '../../src/log.ts';
import { openMigratedDatabase, type MigratedDatabase } from '../helpers/migrated-database.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = createLogger('silent');

describe('task-list cache', () => {
  let db: MigratedDatabase;
  let redis: Redis;
  const redisPrefix = `test-${randomUUID()}:`;
  const epochs: Record<string, number> = {};

  before(async () => {
    db = await openMigratedDatabase();
    redis = await createRedis({ url: REDIS_URL, name: 'shipshape-test', logger });
    assert.ok(await connectRedis(redis), `Redis must be running at ${REDIS_URL}`);
  });
  after(async () => {
    await createRedisStore({ redis, prefix: redisPrefix }).deleteByPrefix('');
    await closeRedis(redis);
    await db.close();
  });

  const newUser = async () => (await createUser(db.database.pool, { email: `cache-${randomUUID()}@example.com`, password: 'correct horse battery' })).id;
  const titles = (read: CachedRead) => (JSON.parse(read.body) as { tasks: Array<{ title: string }> }).tasks.map((task) => task.title);

  for (const kind of ['memory', 'redis'] as const) {
    describe(`with the ${kind} store`, () => {
      let cache: TaskListCache;
      let store: CacheStore;
      before(() => {
        store = kind === 'memory' ? createMemoryStore() : createRedisStore({ redis, prefix: redisPrefix });
        cache = new TaskListCache({ db: db.database.pool, store, logger, epochs: () => epochs });
      });
      const read = (userId: string, limit = 50) => cache.firstPage(userId, limit, () => listTasks(db.database.pool, userId, { limit }));

      test('a repeated read is served from the cache; each write through the domain is seen by the next read', async () => {
        const pool = db.database.pool;
        const user = await newUser();
        assert.equal((await read(user)).hit, false);
        assert.equal((await read(user)).hit, true);

        const created = await createTask(pool, user, { title: 'first' });
        const afterCreate = await read(user);
        assert.equal(afterCreate.hit, false);
        assert.deepEqual(titles(afterCreate), ['first']);
        const cached = await read(user);
        assert.equal(cached.hit, true);
        assert.equal(cached.body, afterCreate.body, 'a hit is the body the miss sent, byte for byte');

        await updateTask(pool, user, created.id, { title: 'renamed', done: true });
        assert.deepEqual(titles(await read(user)), ['renamed']);
        assert.equal((JSON.parse((await read(user)).body) as { tasks: Array<{ done: boolean }> }).tasks[0]?.done, true);

        await deleteTask(pool, user, created.id);
        assert.deepEqual(titles(await read(user)), []);
      });

      test('a write by any other means (raw SQL, another process) is seen by the next read', async () => {
        const user = await newUser();
        await createTask(db.database.pool, user, { title: 'before' });
        await read(user);
        assert.equal((await read(user)).hit, true);
        await db.database.pool.query(`UPDATE tasks SET title = 'fixed by a DBA' WHERE user_id = $1`, [user]);
        assert.deepEqual(titles(await read(user)), ['fixed by a DBA']);
      });

      test('a read that loaded the page before a write committed never caches it', async () => {
        const pool = db.database.pool;
        const user = await newUser();
        await createTask(pool, user, { title: 'old' });
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        let loaded!: () => void;
        const didLoad = new Promise<void>((resolve) => (loaded = resolve));
        // The slow reader has read the old page and stalls before the cache would store it.
        const slow = cache.firstPage(user, 50, async () => {
          const page = await listTasks(pool, user, { limit: 50 });
          loaded();
          await gate;
          return page;
        });
        await didLoad;
        await createTask(pool, user, { title: 'new' });
        release();
        assert.deepEqual(titles(await slow), ['old'], 'the overlapping read may see the old state');
        const next = await read(user);
        assert.deepEqual(titles(next), ['new', 'old'], 'but nothing after the write does');
        assert.equal(next.hit, false);
      });

      test('a read during an uncommitted write caches the old state only under the old version', async () => {
        const pool = db.database.pool;
        const user = await newUser();
        await createTask(pool, user, { title: 'committed' });
        await withTransaction(pool, async (client) => {
          await createTask(client, user, { title: 'in flight' });
          const during = await read(user);
          assert.deepEqual(titles(during), ['committed']);
        });
        assert.deepEqual(titles(await read(user)), ['in flight', 'committed']);
      });

      test('concurrent readers and writers: every read that starts after a write returns has it', async () => {
        const pool = db.database.pool;
        const user = await newUser();
        let stop = false;
        // Background readers keep the cache busy with reads that overlap the writes.
        const readers = Array.from({ length: 3 }, async () => {
          while (!stop) await read(user, 100);
        });
        const writers = Array.from({ length: 3 }, async (_, writer) => {
          // Titles this writer has written and seen acknowledged: each must be in every later read.
          const mine: string[] = [];
          for (let i = 0; i < 8; i += 1) {
            const title = `w${writer}-${i}`;
            const task = await createTask(pool, user, { title });
            mine.push(title);
            if (i % 3 === 2) {
              await updateTask(pool, user, task.id, { title: `${title}-edited` });
              mine[mine.length - 1] = `${title}-edited`;
            }
            const seen = titles(await read(user, 100));
            for (const expected of mine) assert.ok(seen.includes(expected), `${expected} missing from a read that began after its write returned`);
          }
          return mine;
        });
        const written = (await Promise.all(writers)).flat();
        stop = true;
        await Promise.all(readers);
        assert.deepEqual(new Set(titles(await read(user, 100))), new Set(written));
      });

      test('a damaged entry is a miss: the page comes from the database and the entry is stored again', async () => {
        const keys: string[] = [];
        const recording: CacheStore = { ...store, set: (key, value, ttlMs) => (keys.push(key), store.set(key, value, ttlMs)) };
        const watched = new TaskListCache({ db: db.database.pool, store: recording, logger, epochs: () => epochs });
        const user = await newUser();
        await createTask(db.database.pool, user, { title: 'intact' });
        const readWatched = () => watched.firstPage(user, 50, () => listTasks(db.database.pool, user, { limit: 50 }));
        const first = await readWatched();
        const [key] = keys;
        assert.ok(key !== undefined);
        const stored = await store.get(key);
        assert.ok(stored !== undefined);
        const flipped = Buffer.from(stored, 'base64');
        flipped[flipped.length >> 1] = (flipped[flipped.length >> 1] ?? 0) ^ 0xff;
        for (const damaged of ['{"tasks":[]}', flipped.toString('base64'), stored.slice(0, -8)]) {
          await store.set(key, damaged, 60_000);
          const read = await readWatched();
          assert.equal(read.hit, false, `a damaged entry (${damaged.slice(0, 16)}…) is not served`);
          assert.equal(read.body, first.body);
          assert.equal((await readWatched()).hit, true, 'the miss stored the page again');
        }
      });

      test('a cleared epoch or a flush makes the next read a miss, for that scope only', async () => {
        const pool = db.database.pool;
        const [alice, bob] = [await newUser(), await newUser()];
        await createTask(pool, alice, { title: 'a' });
        await createTask(pool, bob, { title: 'b' });
        for (const user of [alice, bob]) await read(user);
        epochs[`user:${alice}`] = (epochs[`user:${alice}`] ?? 0) + 1;
        assert.equal((await read(alice)).hit, false);
        assert.equal((await read(bob)).hit, true);

        assert.ok((await cache.flush(`user:${bob}`)) >= 1);
        assert.equal((await read(bob)).hit, false);
        assert.equal((await read(alice)).hit, true);
        await cache.flush('tasks');
        assert.equal((await read(alice)).hit, false);
        epochs.all = (epochs.all ?? 0) + 1;
        assert.equal((await read(bob)).hit, false);
      });
    });
  }

  test('when Redis is unreachable, reads come from the database and stay correct', async () => {
    const dead = await createRedis({ url: 'redis://127.0.0.1:1', name: 'shipshape-test-dead', logger });
    try {
      const cache = new TaskListCache({ db: db.database.pool, store: createRedisStore({ redis: dead, prefix: redisPrefix }), logger, epochs: () => ({}) });
      const user = await newUser();
      await createTask(db.database.pool, user, { title: 'still here' });
      const first = await cache.firstPage(user, 10, () => listTasks(db.database.pool, user, { limit: 10 }));
      const second = await cache.firstPage(user, 10, () => listTasks(db.database.pool, user, { limit: 10 }));
      assert.deepEqual(titles(first), ['still here']);
      assert.equal(second.hit, false);
    } finally {
      dead.disconnect();
    }
  });

  test('erasing a user (tasks cascading away) needs no version of its own and leaves none behind', async () => {
    const pool = db.database.pool;
    const user = await newUser();
    await createTask(pool, user, { title: 'gone soon' });
    await pool.query('DELETE FROM users WHERE id = $1', [user]);
    const { rows } = await pool.query('SELECT 1 FROM task_list_versions WHERE user_id = $1', [user]);
    assert.equal(rows.length, 0);
    // Erasure that deletes children first, then the user, works too.
    const other = await newUser();
    await createTask(pool, other, { title: 'x' });
    await withTransaction(pool, async (client) => {
      await client.query('DELETE FROM task_list_versions WHERE user_id = $1', [other]);
      await client.query('DELETE FROM tasks WHERE user_id = $1', [other]);
      await client.query('DELETE FROM users WHERE id = $1', [other]);
    });
  });
});
