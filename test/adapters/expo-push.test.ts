/**
 * The Expo push adapter against a loopback server that holds it to Expo's documented
 * contract: chunk and receipt limits, bearer auth, retries on 429/5xx only, and a clear line
 * between "not delivered" and "may have been delivered".
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ExpoPushClient, receiptsUrlFor, type ExpoMessage } from '../../src/adapters/expo-push.ts';
import { TokenBucket, type Clock } from '../../src/adapters/token-bucket.ts';
import { isShipError } from '../../src/errors.ts';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';

const fastRetry = { retries: 3, backoffMs: 5, maxDelayMs: 20 };
const message = (to: string): ExpoMessage => ({ to, title: 'Hello', body: 'World', priority: 'high', data: { screen: 'home' } });
const tokens = (count: number, tag = 't') => Array.from({ length: count }, (_, i) => `ExponentPushToken[${tag}${i}]`);

describe('ExpoPushClient', () => {
  let expo: FakeExpo;
  before(async () => {
    expo = await startFakeExpo({ accessToken: 'expo-secret-token', rateLimit: false });
  });
  after(async () => {
    await expo.close();
  });
  const client = (overrides: Partial<ConstructorParameters<typeof ExpoPushClient>[0]> = {}) =>
    new ExpoPushClient({ pushUrl: expo.pushUrl, accessToken: 'expo-secret-token', retry: fastRetry, ...overrides });

  test('sends up to 100 messages with the bearer token and returns one ticket per message, in order', async () => {
    const batch = tokens(100, 'order');
    expo.markUnregistered(batch[7]!, 'ticket');
    const outcome = await client().send(batch.map(message));
    assert.equal(outcome.kind, 'accepted');
    assert.ok(outcome.kind === 'accepted');
    assert.equal(outcome.tickets.length, 100);
    assert.equal(outcome.tickets[0]?.status, 'ok');
    assert.deepEqual(outcome.tickets[7], {
      status: 'error',
      message: `"${batch[7]}" is not a registered push notification recipient`,
      error: 'DeviceNotRegistered',
    });
    const sent = expo.deliveries.filter((delivery) => delivery.to.startsWith('ExponentPushToken[order'));
    assert.deepEqual(sent[0], { to: batch[0], title: 'Hello', body: 'World', priority: 'high', data: { screen: 'home' }, ticketId: sent[0]?.ticketId });
    assert.equal(expo.requests.at(-1)?.authorization, 'Bearer expo-secret-token');
  });

  test('refuses more than 100 messages before sending anything', async () => {
    const before = expo.requests.length;
    await assert.rejects(client().send(tokens(101).map(message)), RangeError);
    assert.equal(expo.requests.length, before);
  });

  test('a wrong access token is a fatal rejection, not retried, and the token never shows in the message', async () => {
    const before = expo.requests.length;
    const outcome = await client({ accessToken: 'wrong-token-value' }).send(tokens(2, 'auth').map(message));
    assert.equal(outcome.kind, 'rejected');
    assert.ok(outcome.kind === 'rejected');
    assert.equal(outcome.status, 401);
    assert.equal(outcome.fatal, true);
    assert.equal(expo.requests.length, before + 1);
    assert.doesNotMatch(outcome.message, /wrong-token-value|expo-secret-token/);
  });

  test('5xx and 429 are retried with backoff until Expo accepts', async () => {
    expo.failNext({ status: 503, times: 1 });
    const before = expo.requests.length;
    const first = await client().send(tokens(3, 'retry5xx').map(message));
    assert.equal(first.kind, 'accepted');
    assert.equal(expo.requests.length, before + 2);

    expo.failNext({ status: 429, times: 2 });
    const second = await client().send(tokens(3, 'retry429').map(message));
    assert.equal(second.kind, 'accepted');
    assert.equal(expo.deliveries.filter((delivery) => delivery.to.startsWith('ExponentPushToken[retry429')).length, 3, 'delivered once, not per attempt');
  });

  test('a 429/5xx that outlasts the retries is a rejection (certainly not delivered); a 400 is not retried', async () => {
    expo.failNext({ status: 500, times: fastRetry.retries + 1 });
    const exhausted = await client().send(tokens(2, 'exhausted').map(message));
    assert.equal(exhausted.kind, 'rejected');
    assert.ok(exhausted.kind === 'rejected');
    assert.equal(exhausted.fatal, false);
    assert.equal(expo.deliveriesTo('ExponentPushToken[exhausted0]'), 0);

    const before = expo.requests.length;
    const invalid = await client().send([{ ...message('not-a-token'), to: 'not-a-token' }]);
    assert.equal(invalid.kind, 'rejected');
    assert.ok(invalid.kind === 'rejected');
    assert.equal(invalid.code, 'VALIDATION_ERROR');
    assert.equal(expo.requests.length, before + 1);
  });

  test('no answer within the timeout is "in doubt": the request may have been delivered and is not repeated', async () => {
    const held = expo.holdSend(1);
    const pending = client({ timeoutMs: 300 }).send(tokens(2, 'doubt').map(message));
    await held;
    const outcome = await pending;
    assert.equal(outcome.kind, 'in-doubt');
    assert.equal(expo.deliveriesTo('ExponentPushToken[doubt0]'), 1);
  });

  test('a refused connection is retried, then reported as not delivered', async () => {
    const closed = await unusedPort();
    const outcome = await new ExpoPushClient({ pushUrl: `http://127.0.0.1:${closed}/--/api/v2/push/send`, retry: fastRetry }).send(tokens(1).map(message));
    assert.equal(outcome.kind, 'rejected');
    assert.ok(outcome.kind === 'rejected');
    assert.equal(outcome.code, 'UNREACHABLE');
  });

  test('an abort while waiting for the rate limit sends nothing', async () => {
    const slow = client({ messagesPerSecond: 1 });
    const aborted = new AbortController();
    const before = expo.requests.length;
    const first = slow.send(tokens(1, 'abort-a').map(message));
    await first;
    const second = slow.send(tokens(1, 'abort-b').map(message), { signal: aborted.signal });
    aborted.abort();
    assert.deepEqual(await second, { kind: 'not-sent' });
    assert.equal(expo.requests.length, before + 1);
  });

  test('hooks: each attempt is announced before it leaves and, when Expo took nothing, after; a "no" cancels it', async () => {
    const events: string[] = [];
    const hooks = {
      beforeRequest: async () => {
        events.push('before');
        return true;
      },
      afterRefused: async () => void events.push('refused'),
    };
    expo.failNext({ status: 502, times: 1 });
    const outcome = await client().send(tokens(1, 'hooks').map(message), { hooks });
    assert.equal(outcome.kind, 'accepted');
    assert.deepEqual(events, ['before', 'refused', 'before']);

    const before = expo.requests.length;
    const cancelled = await client().send(tokens(1, 'cancelled').map(message), { hooks: { beforeRequest: async () => false } });
    assert.deepEqual(cancelled, { kind: 'not-sent' });
    assert.equal(expo.requests.length, before);
  });

  test('receipts: at most 1000 ids per request, answered by id; the URL is derived from the send URL', async () => {
    const batch = tokens(3, 'receipt');
    expo.markUnregistered(batch[1]!, 'receipt');
    const outcome = await client().send(batch.map(message));
    assert.ok(outcome.kind === 'accepted');
    const ids = outcome.tickets.map((ticket) => (ticket.status === 'ok' ? ticket.id : ''));
    const receipts = await client().getReceipts([...ids, 'unknown-id']);
    assert.deepEqual(receipts.get(ids[0]!), { status: 'ok' });
    assert.equal(receipts.get(ids[1]!)?.status, 'error');
    assert.deepEqual(receipts.get(ids[1]!), {
      status: 'error',
      message: `"${batch[1]}" is not a registered push notification recipient`,
      error: 'DeviceNotRegistered',
    });
    assert.equal(receipts.has('unknown-id'), false);
    await assert.rejects(client().getReceipts(Array.from({ length: 1001 }, (_, i) => `id-${i}`)), RangeError);
    assert.equal(receiptsUrlFor('https://exp.host/--/api/v2/push/send'), 'https://exp.host/--/api/v2/push/getReceipts');
    assert.throws(
      () => receiptsUrlFor('https://exp.host/--/api/v2/push'),
      (error: unknown) => isShipError(error) && error.code === 'SHIP_ERR_CONFIG' && /EXPO_PUSH_URL/.test(error.message),
    );
  });

  test('a receipts endpoint that keeps failing is a provider error naming the host, never the token', async () => {
    const closed = await unusedPort();
    const failing = new ExpoPushClient({
      pushUrl: `http://127.0.0.1:${closed}/--/api/v2/push/send`,
      accessToken: 'secret-in-config',
      retry: { retries: 1, backoffMs: 1, maxDelayMs: 1 },
    });
    await assert.rejects(failing.getReceipts(['a']), (error: unknown) => {
      assert.ok(isShipError(error));
      assert.equal(error.code, 'SHIP_ERR_PROVIDER_FAILED');
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${closed}`));
      assert.doesNotMatch(error.message, /secret-in-config/);
      return true;
    });
  });
});

describe('TokenBucket', () => {
  /** A clock that only moves when the bucket sleeps, so no test depends on real time. */
  function manualClock(): Clock & { slept: number[] } {
    let now = 0;
    const slept: number[] = [];
    return {
      slept,
      now: () => now,
      sleep: async (ms) => {
        slept.push(ms);
        now += ms;
      },
    };
  }

  test('holds at most one burst, then refills at its rate, serving takers in order', async () => {
    const clock = manualClock();
    const bucket = new TokenBucket({ ratePerSecond: 600, capacity: 100, clock });
    await bucket.take(100);
    assert.deepEqual(clock.slept, []);
    const order: string[] = [];
    await Promise.all([bucket.take(60).then(() => order.push('a')), bucket.take(30).then(() => order.push('b'))]);
    assert.deepEqual(order, ['a', 'b']);
    // 90 tokens at 600/s take 150 ms of waiting, whatever the split.
    assert.equal(
      clock.slept.reduce((sum, ms) => sum + ms, 0),
      150,
    );
    await assert.rejects(bucket.take(101), RangeError);
  });
});

async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
