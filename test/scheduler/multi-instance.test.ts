/**
 * Two `shipshape serve` processes (workers on, as by default) on one PostgreSQL database,
 * with the loopback Expo:
 * - a notification scheduled through one instance, which is then stopped, is delivered by
 *   the other when due — exactly once;
 * - with both running, every scheduled notification is handled by one instance only, once.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';
import { ADMIN_TOKEN } from '../helpers/api.ts';
import { startServeProcess } from '../helpers/cli.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { AHEAD_SECONDS, eventually, inSeconds, makeDue, userWithDevice } from '../helpers/workers.ts';

type Instance = Awaited<ReturnType<typeof startServeProcess>>;

async function call(instance: Instance, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, any> }> {
  const response = await fetch(`${instance.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as Record<string, any> };
}

describe('scheduled work across two instances', () => {
  let database: TestDatabase;
  let expo: FakeExpo;
  const states: Array<{ path: string; cleanup(): Promise<void> }> = [];
  const running = new Set<Instance>();

  async function start(args: string[] = []): Promise<Instance> {
    const state = await createStateDir();
    states.push(state);
    const instance = await startServeProcess(
      { DATABASE_URL: database.url, STATE_DIR: state.path, PORT: '0', ADMIN_TOKEN, EXPO_PUSH_URL: expo.pushUrl, SCHEDULER_POLL_MS: '250' },
      args,
    );
    running.add(instance);
    return instance;
  }

  async function stop(instance: Instance): Promise<number | null> {
    running.delete(instance);
    return instance.stop('SIGTERM');
  }

  before(async () => {
    database = await createTestDatabase();
    expo = await startFakeExpo({ rateLimit: false });
  });
  after(async () => {
    for (const instance of running) await instance.stop('SIGKILL');
    await expo?.close();
    await database?.drop();
    for (const state of states) await state.cleanup();
  });

  test('a notification accepted by an instance that is then stopped is delivered by the other, once', async () => {
    const first = await start(['--migrate']);
    const second = await start();
    const device = await userWithDevice(first.url);
    const title = `Across a restart ${randomUUID()}`;
    const created = await call(first, 'POST', '/admin/notifications/schedule', {
      scheduledFor: inSeconds(AHEAD_SECONDS),
      title,
      body: 'Scheduled maintenance on Sunday.',
    });
    assert.equal(created.status, 201);
    assert.equal(await stop(first), 0, 'the accepting instance stopped cleanly before the notification was due');
    await makeDue(database.url, [created.json.notification.id]);

    const sent = await eventually('the other instance to deliver it', async () => {
      const list = await call(second, 'GET', '/admin/notifications?status=sent');
      return list.json.notifications.find((n: Record<string, any>) => n.id === created.json.notification.id);
    });
    assert.equal(sent.recipients, 1);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(expo.deliveries.filter((delivery) => delivery.title === title).length, 1, 'delivered exactly once');
    assert.equal(expo.deliveriesTo(device), 1);
    await stop(second);
  });

  test('with two instances running, each scheduled notification is handled by one of them, once', async () => {
    const [one, two] = [await start(), await start()];
    await userWithDevice(one.url);
    const titles = Array.from({ length: 8 }, (_, i) => `Both running ${i} ${randomUUID()}`);
    const due = inSeconds(AHEAD_SECONDS);
    const ids: string[] = [];
    for (const [i, title] of titles.entries()) {
      const created = await call(i % 2 === 0 ? one : two, 'POST', '/admin/notifications/schedule', { scheduledFor: due, title, body: 'at the same moment' });
      ids.push(created.json.notification.id);
    }
    await makeDue(database.url, ids);
    await eventually('every notification to be sent', async () => {
      const list = await call(two, 'GET', '/admin/notifications?status=sent&limit=500');
      const sent = new Set(list.json.notifications.map((n: Record<string, any>) => n.id));
      return ids.every((id) => sent.has(id)) ? true : undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const devices = (await countOf(database.url, 'SELECT count(*)::int AS n FROM devices WHERE deactivated_at IS NULL')) ?? 0;
    for (const title of titles)
      assert.equal(expo.deliveries.filter((delivery) => delivery.title === title).length, devices, `${title} went to each device once`);
    const attempts = await countOf(database.url, 'SELECT max(attempts)::int AS n FROM scheduled_notifications WHERE id = ANY($1::uuid[])', [ids]);
    assert.equal(attempts, 1, 'no notification was picked up twice');
    const jobs = await countOf(
      database.url,
      "SELECT count(*)::int AS n FROM shipshape_queue.job WHERE name = 'shipshape-notification' AND data->>'id' = ANY($1::text[])",
      [ids],
    );
    assert.equal(jobs, ids.length, 'each was enqueued once');
  });
});

async function countOf(url: string, sql: string, values: unknown[] = []): Promise<number | undefined> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(sql, values);
    return rows[0]?.n;
  } finally {
    await client.end();
  }
}
