/**
 * The login rate-limit counters live under REDIS_PREFIX, like every other key Shipshape keeps in
 * Redis: two deployments sharing one Redis (staging beside production, or every test run on one
 * machine) must not share them, or one's traffic gets the other's logins refused with 429.
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
  await api?.close();
  if (redis) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  }
});

test('a login attempt is counted under the deployment’s REDIS_PREFIX, per address and per account', async () => {
  const email = `limited-${randomUUID()}@example.com`;
  const response = await api.request('POST', '/auth/login', { body: { email, password: 'not the password' } });
  assert.equal(response.status, 401);
  const keys = await redis.keys(`${prefix}*login:*`);
  assert.ok(keys.some((key) => key.endsWith(`login:account:${email}`)), `per-account counter under the prefix: ${JSON.stringify(keys)}`);
  assert.ok(keys.some((key) => key.includes('login:ip:')), `per-address counter under the prefix: ${JSON.stringify(keys)}`);
});
