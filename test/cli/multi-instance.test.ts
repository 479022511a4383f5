/**
 * Three `shipshape serve` processes on one PostgreSQL database: a maintenance toggle and a
 * cache clear made through one reach all three without waiting for the poll — once with
 * Redis pub/sub, once with LISTEN/NOTIFY alone. The instances poll only once a minute here,
 * so a change that arrives well inside that minute was carried by a notification. How fast
 * it arrives (milliseconds) is measured by bench/propagation.ts, not asserted here: a busy
 * CI machine may take seconds.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ADMIN_TOKEN } from '../helpers/api.ts';
import { startServeProcess } from '../helpers/cli.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const POLL_MS = 60_000;
/** Well inside one poll interval: arriving by then proves a notification carried the change. */
const NOTIFICATION_WINDOW_MS = POLL_MS - 10_000;

type Instance = Awaited<ReturnType<typeof startServeProcess>>;

/** Polls every instance until each satisfies `seen`, or the deadline passes; returns who saw it. */
async function seenByAll(
  instances: readonly Instance[],
  path: string,
  seen: (status: number, body: Record<string, any>) => boolean,
  deadline: number,
): Promise<boolean[]> {
  const result = instances.map(() => false);
  while (result.includes(false) && Date.now() < deadline) {
    await Promise.all(
      instances.map(async (instance, i) => {
        if (result[i]) return;
        const response = await fetch(`${instance.url}${path}`);
        if (seen(response.status, (await response.json()) as Record<string, any>)) result[i] = true;
      }),
    );
    if (result.includes(false)) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return result;
}

async function post(instance: Instance, path: string, body: unknown): Promise<Record<string, any>> {
  const response = await fetch(`${instance.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as Record<string, any>;
}

for (const withRedis of [true, false]) {
  describe(`three instances on one database, ${withRedis ? 'with Redis pub/sub' : 'with LISTEN/NOTIFY only'}`, () => {
    let database: TestDatabase;
    const states: Array<Awaited<ReturnType<typeof createStateDir>>> = [];
    let instances: Instance[] = [];

    before(async () => {
      database = await createTestDatabase();
      // One prefix for the three (they must share the channel), unique to this run.
      const redisEnv: Record<string, string> = withRedis ? { REDIS_URL, REDIS_PREFIX: `test-${randomUUID()}:` } : {};
      const env = async (): Promise<Record<string, string>> => {
        const state = await createStateDir();
        states.push(state);
        return { DATABASE_URL: database.url, PORT: '0', STATE_DIR: state.path, ADMIN_TOKEN, APP_STATE_POLL_MS: String(POLL_MS), ...redisEnv };
      };
      // The first applies the migrations; the other two find the schema ready.
      const first = await startServeProcess(await env(), ['--migrate']);
      const [second, third] = [await env(), await env()];
      instances = [first, ...(await Promise.all([startServeProcess(second), startServeProcess(third)]))];
    });

    after(async () => {
      const codes = await Promise.all(instances.map((instance) => instance.stop()));
      assert.deepEqual(codes, [0, 0, 0], 'every instance stops cleanly');
      await database.drop();
      for (const state of states) await state.cleanup();
    });

    test('each instance says how it hears of changes', () => {
      const expected = withRedis ? 'postgres, redis, poll' : 'postgres, poll';
      for (const instance of instances) assert.match(instance.output(), new RegExp(`shared state changes arrive via ${expected}`));
    });

    test('a maintenance toggle through one instance reaches all three without waiting for the poll, both ways', async () => {
      await post(instances[0]!, '/admin/maintenance', { enabled: true, message: 'Emergency maintenance in progress.' });
      const on = await seenByAll(
        instances,
        '/health',
        (status, body) => status === 503 && body.message === 'Emergency maintenance in progress.',
        Date.now() + NOTIFICATION_WINDOW_MS,
      );
      assert.deepEqual(on, [true, true, true]);

      await post(instances[2]!, '/admin/maintenance', { enabled: false });
      const off = await seenByAll(instances, '/health', (status, body) => status === 200 && body.status === 'ok', Date.now() + NOTIFICATION_WINDOW_MS);
      assert.deepEqual(off, [true, true, true]);
    });

    test('a cache clear through one instance reaches all three without waiting for the poll', async () => {
      const { epoch } = await post(instances[1]!, '/admin/cache/clear', { scope: 'tasks' });
      const seen = await seenByAll(instances, '/config', (_status, body) => body.cacheEpochs?.tasks === epoch, Date.now() + NOTIFICATION_WINDOW_MS);
      assert.deepEqual(seen, [true, true, true]);
    });
  });
}
