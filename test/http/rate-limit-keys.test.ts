/**
 * The sign-in rate limits keep their counters in Redis under REDIS_PREFIX, like every other key,
 * so deployments (and test runs) sharing a Redis never count each other's attempts, and the
 * per-account counters are keyed by a hash: no email address is ever written to Redis.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { startTestApi, type TestApi } from '../helpers/api.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `test-${randomUUID()}:`;
let api: TestApi;
let redis: Redis;

before(async () => {
  api = await startTestApi({ env: { REDIS_URL, REDIS_PREFIX: prefix } });
  redis = new Redis(REDIS_URL);
});

after(async () => {
  await api.close();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
});

test('rate-limit counters live under REDIS_PREFIX and hold no email address', async () => {
  const email = `limits-${randomUUID()}@example.com`;
  assert.equal((await api.request('POST', '/auth/register', { body: { email, password: 'correct horse battery' } })).status, 201);
  assert.equal((await api.request('POST', '/auth/login', { body: { email, password: 'wrong password here' } })).status, 401);

  const ours = await redis.keys(`${prefix}rate-limit:*`);
  assert.ok(
    ours.some((key) => key.includes('login:account:')),
    `per-account login counter under the prefix: ${ours.join(', ')}`,
  );
  assert.ok(
    ours.some((key) => key.includes('login:ip:')),
    `per-address sign-in counter under the prefix: ${ours.join(', ')}`,
  );
  const everyKey = await redis.keys('*');
  assert.deepEqual(
    everyKey.filter((key) => key.includes(email)),
    [],
    'no key names the email',
  );
});
