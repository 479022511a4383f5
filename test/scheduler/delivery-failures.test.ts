/**
 * A scheduled notification whose send did not go out is never listed `sent`: every chunk
 * failed → `failed`, some failed → `partial`, each with the cause (connection refused, Expo's
 * answer) in `error`; and the watchdog's failed-notifications condition sees it. Then the
 * server's worker: the pg-boss job of such a notification fails (not `completed`), with the
 * cause in its output.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ExpoPushClient } from '../../src/adapters/expo-push.ts';
import { newRunner } from '../../src/domain/notifications.ts';
import { deliverScheduledNotification, getScheduledNotification, scheduleNotification } from '../../src/domain/scheduled-notifications.ts';
import { readFailedNotifications } from '../../src/ops/diagnostics/failures.ts';
import { currentProcess } from '../../src/ops/engine/process-identity.ts';
import { QUEUE_SCHEMA } from '../../src/db/queue.ts';
import { startFakeExpo, SEND_PATH, type FakeExpo } from '../fakes/expo.ts';
import { openMigratedDatabase, type MigratedDatabase } from '../helpers/migrated-database.ts';
import { AHEAD_SECONDS, eventually, inSeconds, makeDue, startWorkerApi, userWithDevice, type WorkerApi } from '../helpers/workers.ts';

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const NO_RETRY = { retries: 0, backoffMs: 1, maxDelayMs: 1 };

describe('scheduled notification delivery that fails', () => {
  let db: MigratedDatabase;
  let expo: FakeExpo;

  before(async () => {
    db = await openMigratedDatabase();
    expo = await startFakeExpo({ rateLimit: false });
    const pool = db.database.pool;
    // 150 devices: two chunks of at most 100.
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO users (email, password_hash) SELECT 'df-' || g || '@example.com', 'x' FROM generate_series(1, 150) g RETURNING id`,
    );
    await pool.query(
      `INSERT INTO devices (token, user_id, platform) SELECT 'ExponentPushToken[df-' || ord || ']', u, 'ios' FROM unnest($1::uuid[]) WITH ORDINALITY AS x(u, ord)`,
      [rows.map((row) => row.id)],
    );
  });
  after(async () => {
    await expo?.close();
    await db?.close();
  });

  async function due(title: string): Promise<string> {
    const pool = db.database.pool;
    const { notification } = await scheduleNotification(pool, { scheduledFor: new Date(Date.now() + 60_000), title, body: 'body', requestedBy: 'test' });
    await pool.query(`UPDATE scheduled_notifications SET status = 'queued', queued_at = now() WHERE id = $1::uuid`, [notification.id]);
    return notification.id;
  }

  const options = { runner: newRunner(currentProcess()), concurrency: 1, lastAttempt: false };

  test('every chunk failing (connection refused) is listed failed with the cause, and the watchdog counts it', async () => {
    const port = await closedPort();
    const unreachable = new ExpoPushClient({ pushUrl: `http://127.0.0.1:${port}${SEND_PATH}`, retry: NO_RETRY });
    const id = await due('Unreachable Expo');
    const outcome = await deliverScheduledNotification(db.database.pool, unreachable, id, options);
    assert.equal(outcome.outcome, 'failed');
    const listed = await getScheduledNotification(db.database.pool, id);
    assert.equal(listed.status, 'failed');
    assert.equal(listed.sentAt, null);
    assert.match(listed.error ?? '', /2 of 2 chunk\(s\) failed, not delivered: could not connect to Expo: .*ECONNREFUSED/);
    const failures = await readFailedNotifications(db.database.pool, 3_600_000);
    assert.ok(failures.sends + failures.scheduled >= 1, JSON.stringify(failures));
    assert.ok(failures.titles.includes('Unreachable Expo'));
  });

  test('some chunks failing is listed partial with the cause, sent to the others', async () => {
    const client = new ExpoPushClient({ pushUrl: expo.pushUrl, retry: NO_RETRY });
    const id = await due('Half delivered');
    const before = expo.deliveries.length;
    expo.failNext({ status: 400, code: 'VALIDATION_ERROR', times: 1 });
    const outcome = await deliverScheduledNotification(db.database.pool, client, id, options);
    assert.equal(outcome.outcome, 'partial');
    const listed = await getScheduledNotification(db.database.pool, id);
    assert.equal(listed.status, 'partial');
    assert.ok(listed.sentAt !== null, 'some of it went out');
    assert.match(listed.error ?? '', /1 of 2 chunk\(s\) failed, not delivered: Expo answered HTTP 400/);
    assert.ok(expo.deliveries.length - before >= 50, 'the other chunk was delivered');
  });

  test('a send that goes out to everyone is still listed sent, with no error', async () => {
    const client = new ExpoPushClient({ pushUrl: expo.pushUrl, retry: NO_RETRY });
    const id = await due('All delivered');
    const outcome = await deliverScheduledNotification(db.database.pool, client, id, options);
    assert.equal(outcome.outcome, 'sent');
    const listed = await getScheduledNotification(db.database.pool, id);
    assert.equal(listed.status, 'sent');
    assert.equal(listed.error, null);
  });
});

describe('the worker, with Expo unreachable', () => {
  let api: WorkerApi;

  before(async () => {
    const port = await closedPort();
    api = await startWorkerApi({ env: { EXPO_PUSH_URL: `http://127.0.0.1:${port}${SEND_PATH}` } });
    await userWithDevice(api.url);
  });
  after(async () => {
    await api?.close();
  });

  test('the notification is listed failed with the cause, and its pg-boss job fails (not completed)', async () => {
    const created = await api.call('POST', '/admin/notifications/schedule', {
      body: { title: 'Nobody hears this', body: 'body', scheduledFor: inSeconds(AHEAD_SECONDS) },
    });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const id: string = created.json.notification.id;
    await makeDue(api.server.database.pool, [id]);
    const failed = await eventually('the notification to be listed failed', async () => {
      const list = await api.call('GET', '/admin/notifications?status=failed');
      return (list.json.notifications as Array<Record<string, any>>).find((n) => n.id === id);
    });
    assert.match(String(failed.error), /could not connect to Expo: .*ECONNREFUSED/);
    const sent = await api.call('GET', '/admin/notifications?status=sent');
    assert.ok(!(sent.json.notifications as Array<Record<string, any>>).some((n) => n.id === id), 'never listed sent');

    const pool = api.server.database.pool;
    const job = await eventually('its queue job to settle', async () => {
      const { rows } = await pool.query<{ state: string; output: Record<string, unknown> | null }>(
        `SELECT state::text AS state, output FROM ${QUEUE_SCHEMA}.job WHERE data->>'id' = $1::text ORDER BY created_on DESC LIMIT 1`,
        [id],
      );
      const row = rows[0];
      return row && row.state !== 'created' && row.state !== 'active' && row.state !== 'retry' ? row : undefined;
    });
    assert.equal(job.state, 'failed', JSON.stringify(job));
    assert.match(JSON.stringify(job.output), /ECONNREFUSED/);
  });
});
