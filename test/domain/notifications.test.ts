/**
 * Push sends as recorded jobs, against the loopback Expo: fan-out in chunks of at most 100
 * within the rate limit, each device once even across interruptions and competing runners,
 * DeviceNotRegistered from tickets and receipts deactivating devices, and the audience rules.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ExpoPushClient } from '../../src/adapters/expo-push.ts';
import { registerDevice } from '../../src/domain/devices.ts';
import { createNotificationJob, getNotificationJob, newRunner, runNotificationJob, sendNotification, type RunOptions } from '../../src/domain/notifications.ts';
import { putPreferences } from '../../src/domain/preferences.ts';
import { checkReceipts } from '../../src/domain/push-receipts.ts';
import { isShipError } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';
import { currentProcess } from '../../src/ops/engine/process-identity.ts';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';
import { openMigratedDatabase, type MigratedDatabase } from '../helpers/migrated-database.ts';

const fastRetry = { retries: 6, backoffMs: 20, maxDelayMs: 200 };
const logger = createLogger('silent');

describe('notification jobs', () => {
  let db: MigratedDatabase;
  let expo: FakeExpo;
  const push = () => new ExpoPushClient({ pushUrl: expo.pushUrl, retry: fastRetry });
  const run = (overrides: Partial<RunOptions> = {}): RunOptions => ({ runner: newRunner(currentProcess()), logger, ...overrides });

  before(async () => {
    db = await openMigratedDatabase();
    expo = await startFakeExpo();
  });
  after(async () => {
    await expo.close();
    await db.close();
  });

  /** `count` users with one device each; returns their tokens. Devices of earlier tests are deactivated first. */
  async function devices(count: number, tag: string): Promise<string[]> {
    const pool = db.database.pool;
    await pool.query(`UPDATE devices SET deactivated_at = now(), deactivated_reason = 'test reset' WHERE deactivated_at IS NULL`);
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO users (email, password_hash) SELECT $1::text || g || '@example.com', 'x' FROM generate_series(1, $2::int) g RETURNING id`,
      [`${tag}-${randomUUID()}-`, count],
    );
    const tokens = rows.map((_, i) => `ExponentPushToken[${tag}-${i}]`);
    await pool.query(`INSERT INTO devices (token, user_id, platform) SELECT t, u, 'ios' FROM unnest($1::text[], $2::uuid[]) AS x(t, u)`, [
      tokens,
      rows.map((row) => row.id),
    ]);
    return tokens;
  }

  const deliveredOnce = (tokens: readonly string[]) => {
    const counts = new Map<string, number>();
    for (const delivery of expo.deliveries) counts.set(delivery.to, (counts.get(delivery.to) ?? 0) + 1);
    for (const token of tokens) assert.equal(counts.get(token), 1, `${token} delivered ${counts.get(token) ?? 0} times`);
  };

  test('fans out a few thousand devices in chunks of at most 100, within Expo’s rate limit, each device once', async () => {
    const tokens = await devices(2_450, 'fanout');
    const before = expo.requests.length;
    const job = await sendNotification(
      db.database.pool,
      push(),
      { title: 'Maintenance', body: 'Back soon', priority: 'high', data: { kind: 'status' }, requestedBy: 'test' },
      run(),
    );
    assert.equal(job.status, 'done');
    assert.equal(job.recipients, 2_450);
    assert.deepEqual(job.chunks, { total: 25, pending: 0, sending: 0, sent: 25, failed: 0, inDoubt: 0 });
    assert.equal(job.tickets.ok, 2_450);
    deliveredOnce(tokens);
    const sends = expo.requests.slice(before);
    assert.ok(sends.every((request) => request.count <= 100 && request.status === 200));
    assert.equal(expo.rateLimited, 0, 'never exceeded 600 notifications per second as Expo measures it');
    const sample = expo.deliveries.find((delivery) => delivery.to === tokens[0]);
    assert.deepEqual(
      { title: sample?.title, body: sample?.body, priority: sample?.priority, data: sample?.data },
      { title: 'Maintenance', body: 'Back soon', priority: 'high', data: { kind: 'status' } },
    );
  });

  test('when Expo answers 429 (its limit is lower than ours), chunks are retried with backoff and still arrive once', async () => {
    const tokens = await devices(600, 'throttled');
    expo.setRateLimit(200);
    try {
      const rateLimitedBefore = expo.rateLimited;
      const patient = new ExpoPushClient({ pushUrl: expo.pushUrl, retry: { retries: 30, backoffMs: 50, maxDelayMs: 500 } });
      const job = await sendNotification(db.database.pool, patient, { title: 't', body: 'b', requestedBy: 'test' }, run({ concurrency: 4 }));
      assert.equal(job.status, 'done');
      assert.equal(job.chunks.sent, 6);
      assert.ok(expo.rateLimited > rateLimitedBefore, 'the fake did push back');
      deliveredOnce(tokens);
    } finally {
      expo.setRateLimit(600);
    }
  });

  test('DeviceNotRegistered in a ticket deactivates the device at once; in a receipt, when receipts are checked', async () => {
    const pool = db.database.pool;
    const tokens = await devices(5, 'gone');
    expo.markUnregistered(tokens[0]!, 'ticket');
    expo.markUnregistered(tokens[1]!, 'receipt');
    const job = await sendNotification(pool, push(), { title: 't', body: 'b', requestedBy: 'test' }, run());
    assert.equal(job.tickets.error, 1);
    assert.equal(job.receipts.pending, 4);
    const active = async () =>
      (await pool.query<{ token: string }>('SELECT token FROM devices WHERE deactivated_at IS NULL AND token = ANY($1) ORDER BY token', [tokens])).rows.map(
        (row) => row.token,
      );
    assert.deepEqual(await active(), tokens.slice(1));

    const notDue = await checkReceipts(pool, push(), { minAgeMs: 60 * 60_000 });
    assert.equal(notDue.checked, 0, 'receipts are read only once they are due');
    const result = await checkReceipts(pool, push(), { minAgeMs: 0 });
    // Earlier tests' receipts are due too; this job's one receipt error is the only error.
    assert.equal(result.errors, 1);
    assert.equal(result.devicesDeactivated, 1);
    assert.equal(result.notReady, 0);
    assert.deepEqual(await active(), tokens.slice(2));
    const after = await getNotificationJob(pool, job.id);
    assert.deepEqual(after.receipts, { ok: 3, error: 1, pending: 0 });
    assert.equal(after.deviceNotRegistered, 2);

    const next = await sendNotification(pool, push(), { title: 'again', body: 'b', requestedBy: 'test' }, run());
    assert.equal(next.recipients, 3, 'deactivated devices are skipped');
    assert.equal((await checkReceipts(pool, push(), { minAgeMs: 0 })).devicesDeactivated, 0);
  });

  test('a device registered again after the send that reported it gone stays active', async () => {
    const pool = db.database.pool;
    const [token] = await devices(1, 'returned');
    expo.markUnregistered(token!, 'receipt');
    await sendNotification(pool, push(), { title: 't', body: 'b', requestedBy: 'test' }, run());
    const { rows } = await pool.query<{ user_id: string }>('SELECT user_id FROM devices WHERE token = $1', [token]);
    await registerDevice(pool, rows[0]!.user_id, { token: token!, platform: 'android' });
    assert.equal((await checkReceipts(pool, push(), { minAgeMs: 0 })).devicesDeactivated, 0);
  });

  test('an interrupted send resumes where it stopped, and no device gets it twice', async () => {
    const pool = db.database.pool;
    const tokens = await devices(1_000, 'resume');
    const { job } = await createNotificationJob(pool, { title: 'interrupted', body: 'b', requestedBy: 'test' });
    const stop = new AbortController();
    const partial = await runNotificationJob(
      pool,
      push(),
      job.id,
      run({ signal: stop.signal, concurrency: 2, onProgress: ({ settledChunks }) => settledChunks >= 3 && stop.abort() }),
    );
    assert.equal(partial.status, 'sending');
    assert.ok(partial.chunks.sent >= 3 && partial.chunks.pending > 0, JSON.stringify(partial.chunks));
    assert.equal(partial.chunks.sending, 0, 'chunks in flight were finished and recorded before stopping');

    const resumed = await runNotificationJob(pool, push(), job.id, run());
    assert.equal(resumed.status, 'done');
    assert.equal(resumed.chunks.sent, 10);
    deliveredOnce(tokens);
    const again = await runNotificationJob(pool, push(), job.id, run());
    assert.equal(again.status, 'done', 'resuming a finished job is a no-op');
    deliveredOnce(tokens);
  });

  test('after a crash, a chunk that was "sending" is in doubt and never sent again; one only "claimed" is sent', async () => {
    const pool = db.database.pool;
    const tokens = await devices(250, 'crash');
    const { job } = await createNotificationJob(pool, { title: 'crash', body: 'b', requestedBy: 'test' });
    // What a crash leaves behind: chunk 0's request was in flight, chunk 1 waited for the rate limit.
    const dead = { pid: 999_999, host: 'elsewhere', instance: randomUUID() };
    await pool.query(`UPDATE notification_chunks SET status = 'sending', claimed_by = $2, claimed_at = now() WHERE job_id = $1 AND seq = 0`, [
      job.id,
      dead.instance,
    ]);
    await pool.query(`UPDATE notification_chunks SET status = 'claimed', claimed_by = $2, claimed_at = now() WHERE job_id = $1 AND seq = 1`, [
      job.id,
      dead.instance,
    ]);
    await pool.query(`UPDATE notification_jobs SET runner = $2::jsonb, heartbeat_at = now() - interval '1 minute' WHERE id = $1`, [
      job.id,
      JSON.stringify(dead),
    ]);

    const resumed = await runNotificationJob(pool, push(), job.id, run());
    assert.equal(resumed.status, 'done');
    assert.deepEqual(resumed.chunks, { total: 3, pending: 0, sending: 0, sent: 2, failed: 0, inDoubt: 1 });
    const { rows } = await pool.query<{ token: string }>('SELECT token FROM notification_deliveries WHERE job_id = $1 AND seq = 0', [job.id]);
    const inDoubt = new Set(rows.map((row) => row.token));
    for (const token of tokens) assert.equal(expo.deliveriesTo(token), inDoubt.has(token) ? 0 : 1);
  });

  test('a job with a live runner is not taken over; one whose runner is known dead is, at once', async () => {
    const pool = db.database.pool;
    await devices(3, 'locked');
    const { job } = await createNotificationJob(pool, { title: 'locked', body: 'b', requestedBy: 'test' });
    const other = { pid: 4242, host: 'another-host', instance: randomUUID() };
    await pool.query(`UPDATE notification_jobs SET runner = $2::jsonb, heartbeat_at = now() WHERE id = $1`, [job.id, JSON.stringify(other)]);
    await assert.rejects(
      runNotificationJob(pool, push(), job.id, run()),
      (error: unknown) => isShipError(error) && error.code === 'SHIP_ERR_LOCKED' && /another-host/.test(error.message),
    );
    const done = await runNotificationJob(pool, push(), job.id, run({ isGone: (runner) => runner.host === 'another-host' }));
    assert.equal(done.status, 'done');
  });

  test('a refused access token stops the job as failed; after the fix, resume sends everything once', async () => {
    const guarded = await startFakeExpo({ accessToken: 'the-right-token' });
    try {
      const pool = db.database.pool;
      const tokens = await devices(300, 'auth');
      const { job } = await createNotificationJob(pool, { title: 'auth', body: 'b', requestedBy: 'test' });
      const wrong = new ExpoPushClient({ pushUrl: guarded.pushUrl, accessToken: 'a-wrong-token', retry: fastRetry });
      const failed = await runNotificationJob(pool, wrong, job.id, run());
      assert.equal(failed.status, 'failed');
      assert.match(failed.error ?? '', /401.*EXPO_ACCESS_TOKEN.*notify resume/);
      assert.doesNotMatch(failed.error ?? '', /a-wrong-token/);
      assert.equal(failed.chunks.pending, 3);

      const right = new ExpoPushClient({ pushUrl: guarded.pushUrl, accessToken: 'the-right-token', retry: fastRetry });
      const done = await runNotificationJob(pool, right, job.id, run());
      assert.equal(done.status, 'done');
      for (const token of tokens) assert.equal(guarded.deliveriesTo(token), 1);
    } finally {
      await guarded.close();
    }
  });

  test('chunks Expo kept refusing are failed (not delivered); resume --retry-failed sends them', async () => {
    const pool = db.database.pool;
    const tokens = await devices(50, 'failed');
    expo.failNext({ status: 500, times: fastRetry.retries + 1 });
    const first = await sendNotification(pool, push(), { title: 'f', body: 'b', requestedBy: 'test' }, run());
    assert.equal(first.status, 'done');
    assert.equal(first.chunks.failed, 1);
    assert.equal(expo.deliveriesTo(tokens[0]!), 0);
    assert.equal((await runNotificationJob(pool, push(), first.id, run())).chunks.failed, 1, 'plain resume leaves failed chunks alone');
    const retried = await runNotificationJob(pool, push(), first.id, run({ retryFailed: true }));
    assert.equal(retried.chunks.sent, 1);
    deliveredOnce(tokens);
  });

  test('the audience: users who turned notifications off, chosen users only, and an empty audience', async () => {
    const pool = db.database.pool;
    const tokens = await devices(3, 'audience');
    const owners = (await pool.query<{ token: string; user_id: string }>('SELECT token, user_id FROM devices WHERE token = ANY($1) ORDER BY token', [tokens]))
      .rows;
    await putPreferences(pool, owners[0]!.user_id, { notificationsEnabled: false });
    const everyone = await sendNotification(pool, push(), { title: 'all', body: 'b', requestedBy: 'test' }, run());
    assert.equal(everyone.recipients, 2);
    const chosen = await sendNotification(pool, push(), { title: 'one', body: 'b', userIds: [owners[2]!.user_id], requestedBy: 'test' }, run());
    assert.equal(chosen.recipients, 1);
    const nobody = await sendNotification(pool, push(), { title: 'none', body: 'b', userIds: [randomUUID()], requestedBy: 'test' }, run());
    assert.equal(nobody.status, 'done');
    assert.equal(nobody.recipients, 0);
  });

  test('the same idempotency key returns the same job instead of sending again', async () => {
    const pool = db.database.pool;
    const tokens = await devices(2, 'idem');
    const key = `scheduled:${randomUUID()}`;
    const first = await sendNotification(pool, push(), { title: 'once', body: 'b', requestedBy: 'scheduler', idempotencyKey: key }, run());
    const again = await createNotificationJob(pool, { title: 'once', body: 'b', requestedBy: 'scheduler', idempotencyKey: key });
    assert.equal(again.created, false);
    assert.equal(again.job.id, first.id);
    await sendNotification(pool, push(), { title: 'once', body: 'b', requestedBy: 'scheduler', idempotencyKey: key }, run());
    deliveredOnce(tokens);
  });

  test('bad notifications are refused before anything is recorded', async () => {
    const pool = db.database.pool;
    const cases: Array<[Parameters<typeof createNotificationJob>[1], RegExp]> = [
      [{ title: ' ', body: 'b', requestedBy: 'test' }, /title/],
      [{ title: 't', body: '', requestedBy: 'test' }, /body/],
      [{ title: 't', body: 'x'.repeat(1_999), data: { blob: 'y'.repeat(3_000) }, requestedBy: 'test' }, /bytes/],
      [{ title: 't', body: 'b', userIds: ['not-a-uuid'], requestedBy: 'test' }, /userIds/],
    ];
    const { rows: before } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM notification_jobs');
    for (const [request, message] of cases) {
      await assert.rejects(
        createNotificationJob(pool, request),
        (error: unknown) => isShipError(error) && error.code === 'SHIP_ERR_VALIDATION' && message.test(error.message),
      );
    }
    await assert.rejects(getNotificationJob(pool, 'nope'), (error: unknown) => isShipError(error) && error.code === 'SHIP_ERR_VALIDATION');
    await assert.rejects(getNotificationJob(pool, randomUUID()), (error: unknown) => isShipError(error) && error.code === 'SHIP_ERR_NOT_FOUND');
    const { rows: afterRows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM notification_jobs');
    assert.equal(afterRows[0]!.n, before[0]!.n);
  });

  test('erasing a user removes their deliveries and devices; a send planned before skips them', async () => {
    const pool = db.database.pool;
    const tokens = await devices(2, 'erased');
    const { job } = await createNotificationJob(pool, { title: 'before erasure', body: 'b', requestedBy: 'test' });
    const { rows } = await pool.query<{ user_id: string }>('SELECT user_id FROM devices WHERE token = $1', [tokens[0]]);
    await pool.query('DELETE FROM users WHERE id = $1', [rows[0]!.user_id]);
    const done = await runNotificationJob(pool, push(), job.id, run());
    assert.equal(done.status, 'done');
    assert.equal(expo.deliveriesTo(tokens[0]!), 0);
    assert.equal(expo.deliveriesTo(tokens[1]!), 1);
  });
});
