/**
 * Push over HTTP: the app registers device tokens, an operator sends through
 * `POST /admin/notifications/send` and follows the job; bad input is a 4xx naming the field.
 * Once on PostgreSQL and once on the embedded database, against the loopback Expo.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ADMIN_TOKEN, signUp, startTestApi, type TestApi } from '../helpers/api.ts';
import { eventually } from '../helpers/patience.ts';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';

for (const backend of ['postgres', 'embedded'] as const) {
  describe(`push notifications on ${backend}`, () => {
    let api: TestApi;
    let expo: FakeExpo;
    before(async () => {
      expo = await startFakeExpo({ accessToken: 'expo-access-token-for-tests' });
      api = await startTestApi({ embedded: backend === 'embedded', env: { EXPO_PUSH_URL: expo.pushUrl, EXPO_ACCESS_TOKEN: 'expo-access-token-for-tests' } });
    });
    after(async () => {
      await api.close();
      await expo.close();
    });

    const token = () => `ExponentPushToken[${randomUUID()}]`;
    const admin = { token: ADMIN_TOKEN };

    async function finished(id: string): Promise<Record<string, any>> {
      return eventually(
        'the send to finish',
        async () => {
          const response = await api.request('GET', `/admin/notifications/${id}`, admin);
          assert.equal(response.status, 200);
          return response.json.job.status === 'sending' ? undefined : response.json.job;
        },
        { pollMs: 50 },
      );
    }

    test('the app registers and removes its device token; a token moves with whoever registers it last', async () => {
      const [alice, bob] = [await signUp(api), await signUp(api)];
      const shared = token();
      const registered = await api.request('POST', '/me/devices', { token: alice.token, body: { token: shared, platform: 'ios' } });
      assert.equal(registered.status, 201);
      assert.equal(registered.json.token, shared);
      assert.equal(registered.json.platform, 'ios');
      assert.ok(Date.parse(registered.json.registeredAt));
      assert.equal(
        (await api.request('POST', '/me/devices', { token: alice.token, body: { token: shared, platform: 'ios' } })).status,
        201,
        'registering again is fine',
      );

      assert.equal((await api.request('POST', '/me/devices', { token: bob.token, body: { token: shared, platform: 'android' } })).status, 201);
      const path = `/me/devices/${encodeURIComponent(shared)}`;
      assert.equal((await api.request('DELETE', path, { token: alice.token })).status, 404, 'no longer Alice’s');
      assert.equal((await api.request('DELETE', path, { token: bob.token })).status, 204);
      assert.equal((await api.request('DELETE', path, { token: bob.token })).status, 404);
    });

    test('device registration refuses bad input and anonymous callers', async () => {
      const user = await signUp(api);
      const cases: Array<[unknown, RegExp]> = [
        [{ token: 'not-a-push-token', platform: 'ios' }, /body\.token: must be an Expo push token/],
        [{ token: token(), platform: 'windows' }, /body\.platform/],
        [{ token: token() }, /body\.platform/],
        [{ token: token(), platform: 'ios', extra: 1 }, /extra/],
      ];
      for (const [body, message] of cases) {
        const response = await api.request('POST', '/me/devices', { token: user.token, body });
        assert.equal(response.status, 400, JSON.stringify(body));
        assert.equal(response.json.error.code, 'SHIP_ERR_VALIDATION');
        assert.match(response.json.error.message, message);
      }
      assert.equal((await api.request('DELETE', '/me/devices/garbage', { token: user.token })).status, 400);
      assert.equal((await api.request('POST', '/me/devices', { body: { token: token(), platform: 'ios' } })).status, 401);
    });

    test('an admin send is a recorded job: 202 with its location, delivered to every registered device once', async () => {
      const tokens: string[] = [];
      for (let i = 0; i < 3; i += 1) {
        const user = await signUp(api);
        const device = token();
        tokens.push(device);
        assert.equal((await api.request('POST', '/me/devices', { token: user.token, body: { token: device, platform: 'android' } })).status, 201);
      }
      const response = await api.request('POST', '/admin/notifications/send', {
        ...admin,
        body: { title: 'Temporary Maintenance', body: 'We are performing emergency maintenance. Thank you for your patience.', priority: 'high' },
      });
      assert.equal(response.status, 202);
      assert.equal(response.headers.get('location'), `/admin/notifications/${response.json.job.id}`);
      assert.ok(response.json.job.recipients >= 3);
      const job = await finished(response.json.job.id);
      assert.equal(job.status, 'done');
      assert.equal(job.chunks.failed + job.chunks.inDoubt, 0);
      for (const device of tokens) assert.equal(expo.deliveriesTo(device), 1);
      const sent = expo.deliveries.find((delivery) => delivery.to === tokens[0]);
      assert.equal(sent?.priority, 'high');
      assert.equal(sent?.title, 'Temporary Maintenance');
      assert.ok(expo.requests.every((request) => request.authorization === 'Bearer expo-access-token-for-tests'));
    });

    test('an Idempotency-Key makes a retried send return the first job instead of sending again', async () => {
      const key = randomUUID();
      const body = { title: 'Once', body: 'Only once' };
      const first = await api.request('POST', '/admin/notifications/send', { ...admin, body, headers: { 'idempotency-key': key } });
      const second = await api.request('POST', '/admin/notifications/send', { ...admin, body, headers: { 'idempotency-key': key } });
      assert.equal(first.status, 202);
      assert.equal(second.status, 200);
      assert.equal(second.json.job.id, first.json.job.id);
      await finished(first.json.job.id);
    });

    test('bad sends are 4xx envelopes naming the field; only admins may send or look', async () => {
      const cases: Array<[unknown, RegExp]> = [
        [{ body: 'no title' }, /body\.title/],
        [{ title: 'x', body: 'y', priority: 'urgent' }, /body\.priority/],
        [{ title: 'x', body: 'y', data: [1, 2] }, /body\.data/],
        [{ title: 'x', body: 'y', sound: 'loud' }, /sound/],
        [{ title: 'x', body: 'y'.repeat(2_001) }, /body\.body/],
        [{ title: 'x', body: 'y'.repeat(1_500), data: { blob: 'z'.repeat(2_600) } }, /bytes/],
      ];
      for (const [body, message] of cases) {
        const response = await api.request('POST', '/admin/notifications/send', { ...admin, body });
        assert.equal(response.status, 400, JSON.stringify(body).slice(0, 80));
        assert.equal(response.json.error.code, 'SHIP_ERR_VALIDATION');
        assert.match(response.json.error.message, message);
      }
      assert.equal((await api.request('POST', '/admin/notifications/send', { ...admin, raw: 'not json' })).status, 400);
      const badKey = await api.request('POST', '/admin/notifications/send', {
        ...admin,
        body: { title: 'x', body: 'y' },
        headers: { 'idempotency-key': 'k'.repeat(201) },
      });
      assert.equal(badKey.status, 400);
      assert.match(badKey.json.error.message, /Idempotency-Key/);
      const user = await signUp(api);
      assert.equal((await api.request('POST', '/admin/notifications/send', { token: user.token, body: { title: 'x', body: 'y' } })).status, 403);
      assert.equal((await api.request('GET', '/admin/notifications/not-a-uuid', admin)).status, 400);
      assert.equal((await api.request('GET', `/admin/notifications/${randomUUID()}`, admin)).status, 404);
    });
  });
}
