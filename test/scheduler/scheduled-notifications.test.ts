/**
 * POST /admin/notifications/schedule, GET /admin/notifications, DELETE /admin/notifications/:id
 * against the real server with its workers and the loopback Expo: bad times are a 400 that
 * says why, a scheduled notification goes out once when due, and one can be cancelled until
 * it goes out. On PostgreSQL, and the delivery once more on the embedded database (pg-boss on
 * PGlite behind the wire server).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';
import { AHEAD_SECONDS, eventually, inSeconds, makeDue, startWorkerApi, userWithDevice, type WorkerApi } from '../helpers/workers.ts';

describe('scheduled notifications on PostgreSQL', () => {
  let api: WorkerApi;
  let expo: FakeExpo;
  before(async () => {
    expo = await startFakeExpo({ rateLimit: false });
    api = await startWorkerApi({ env: { EXPO_PUSH_URL: expo.pushUrl } });
  });
  after(async () => {
    await api?.close();
    await expo?.close();
  });

  test('scheduledFor must be a future ISO time with an offset; the 400 says which rule it broke', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ scheduledFor: '2030-03-01T02:00:00', title: 't', body: 'b' }, /body\.scheduledFor: must be an ISO 8601 time with an offset/],
      [{ scheduledFor: '2030-03-01', title: 't', body: 'b' }, /body\.scheduledFor: must be an ISO 8601 time with an offset/],
      [{ scheduledFor: 'next sunday', title: 't', body: 'b' }, /body\.scheduledFor: must be an ISO 8601 time with an offset/],
      [{ scheduledFor: '2030-02-30T02:00:00Z', title: 't', body: 'b' }, /body\.scheduledFor: .*not a real date/],
      [{ scheduledFor: '2020-03-01T02:00:00-08:00', title: 't', body: 'b' }, /body\.scheduledFor: 2020-03-01T10:00:00\.000Z is not in the future/],
      [{ scheduledFor: inSeconds(400 * 86_400), title: 't', body: 'b' }, /more than a year ahead/],
      [{ scheduledFor: 1_900_000_000, title: 't', body: 'b' }, /body\.scheduledFor/],
      [{ scheduledFor: inSeconds(60), body: 'b' }, /body\.title/],
      [{ scheduledFor: inSeconds(60), title: 't', body: 'b', audience: 'all' }, /audience/],
    ];
    for (const [body, message] of cases) {
      const response = await api.call('POST', '/admin/notifications/schedule', { body });
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.equal(response.json.error.code, 'SHIP_ERR_VALIDATION');
      assert.match(response.json.error.message, message);
    }
    assert.equal(
      (await api.call('POST', '/admin/notifications/schedule', { body: { scheduledFor: inSeconds(60), title: 't', body: 'b' }, token: null })).status,
      403,
    );
  });

  test('a scheduled notification is listed as pending, goes out once when due, and is then listed as sent', async () => {
    const device = await userWithDevice(api.url);
    const title = `Reminder ${randomUUID()}`;
    const scheduledFor = new Date(Date.now() + AHEAD_SECONDS * 1_000);
    const created = await api.call('POST', '/admin/notifications/schedule', {
      body: { scheduledFor: scheduledFor.toISOString().replace('Z', '+00:00'), title, body: 'Maintenance on Sunday.' },
    });
    assert.equal(created.status, 201);
    const id: string = created.json.notification.id;
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(created.json.notification.status, 'pending');
    assert.equal(created.json.notification.scheduledFor, scheduledFor.toISOString());

    const pending = await api.call('GET', '/admin/notifications?status=pending');
    assert.ok(
      pending.json.notifications.some((n: Record<string, any>) => n.id === id),
      'listed while pending',
    );
    const [due] = await makeDue(api.server.database.pool, [id]);

    const sent = await eventually('the notification to be sent', async () => {
      const list = await api.call('GET', '/admin/notifications?status=sent');
      return list.json.notifications.find((n: Record<string, any>) => n.id === id);
    });
    assert.equal(sent.kind, 'scheduled');
    assert.equal(sent.recipients, 1);
    assert.ok(due && Date.parse(sent.sentAt) >= due.getTime(), 'not before its time');
    assert.equal(expo.deliveriesTo(device), 1);
    assert.equal(expo.deliveries.filter((delivery) => delivery.title === title).length, 1);
    const job = await api.call('GET', `/admin/notifications/${sent.jobId}`);
    assert.equal(job.json.job.status, 'done');
  });

  test('a pending notification can be cancelled, and never goes out; once sent it is too late', async () => {
    const title = `Cancelled ${randomUUID()}`;
    const created = await api.call('POST', '/admin/notifications/schedule', { body: { scheduledFor: inSeconds(AHEAD_SECONDS), title, body: 'never' } });
    const id: string = created.json.notification.id;
    const cancelled = await api.call('DELETE', `/admin/notifications/${id}`);
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.json.notification.status, 'cancelled');
    assert.equal((await api.call('DELETE', `/admin/notifications/${id}`)).json.notification.status, 'cancelled', 'cancelling twice is fine');

    // Both come due; once the later one went out, the cancelled one would have gone too.
    const later = await api.call('POST', '/admin/notifications/schedule', {
      body: { scheduledFor: inSeconds(AHEAD_SECONDS), title: `After ${title}`, body: 'goes' },
    });
    await makeDue(api.server.database.pool, [id, later.json.notification.id]);
    await eventually('the later notification to be sent', async () => {
      const list = await api.call('GET', '/admin/notifications?status=sent');
      return list.json.notifications.find((n: Record<string, any>) => n.id === later.json.notification.id);
    });
    assert.equal(expo.deliveries.filter((delivery) => delivery.title === title).length, 0, 'the cancelled one was not sent');
    const listed = await api.call('GET', '/admin/notifications?status=cancelled');
    assert.ok(listed.json.notifications.some((n: Record<string, any>) => n.id === id));

    const tooLate = await api.call('DELETE', `/admin/notifications/${later.json.notification.id}`);
    assert.equal(tooLate.status, 409);
    assert.equal(tooLate.json.error.code, 'SHIP_ERR_TOO_LATE');
    assert.match(tooLate.json.error.message, /already sent/);
    assert.equal((await api.call('DELETE', `/admin/notifications/${randomUUID()}`)).status, 404);
    assert.equal((await api.call('DELETE', '/admin/notifications/not-an-id')).status, 400);
  });

  test('GET /admin/notifications also lists sends made at once, and filters by status', async () => {
    const sent = await api.call('POST', '/admin/notifications/send', { body: { title: `Now ${randomUUID()}`, body: 'at once' } });
    assert.equal(sent.status, 202);
    const all = await api.call('GET', '/admin/notifications?limit=200');
    const immediate = all.json.notifications.find((n: Record<string, any>) => n.id === sent.json.job.id);
    assert.equal(immediate.kind, 'immediate');
    assert.equal((await api.call('GET', '/admin/notifications?status=sometimes')).status, 400);
  });
});

describe('scheduled notifications on the embedded database', () => {
  let api: WorkerApi;
  let expo: FakeExpo;
  before(async () => {
    expo = await startFakeExpo({ rateLimit: false });
    api = await startWorkerApi({ embedded: true, env: { EXPO_PUSH_URL: expo.pushUrl } });
  });
  after(async () => {
    await api?.close();
    await expo?.close();
  });

  test('the job queue runs on PGlite: a scheduled notification goes out once when due', async () => {
    const device = await userWithDevice(api.url);
    const created = await api.call('POST', '/admin/notifications/schedule', {
      body: { scheduledFor: inSeconds(AHEAD_SECONDS), title: 'Embedded', body: 'works' },
    });
    assert.equal(created.status, 201);
    await makeDue(api.server.database.pool, [created.json.notification.id]);
    await eventually('the notification to be sent', async () => {
      const list = await api.call('GET', '/admin/notifications?status=sent');
      return list.json.notifications.find((n: Record<string, any>) => n.id === created.json.notification.id);
    });
    assert.equal(expo.deliveriesTo(device), 1);
  });
});
