/**
 * Admin tokens as hashed records, through the real admin guard: ADMIN_TOKEN works until a
 * rotation; during the overlap the old and the new token both work; after it only the new one
 * (and a revoked one never). Without ADMIN_TOKEN and without issued tokens admin routes are off.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { issueAdminToken, listAdminTokens, revokeAdminToken, rotateAdminTokens, verifyAdminToken } from '../../src/domain/admin-tokens.ts';
import { ADMIN_TOKEN, startTestApi, type TestApi } from '../helpers/api.ts';

describe('admin token rotation', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(async () => {
    await api?.close();
  });
  const metrics = (token: string) => api.request('GET', '/metrics', { token });

  test('old and new admin tokens are both valid during the overlap, and only the new one after it', async () => {
    const { pool } = api.server.database;
    assert.equal((await metrics(ADMIN_TOKEN)).status, 200, 'ADMIN_TOKEN is the bootstrap token');
    // Long enough that a busy machine cannot run past it between the checks below.
    const overlapMs = 10 * 60_000;
    const first = await rotateAdminTokens(pool, { createdBy: 'test', overlapMs, environmentToken: ADMIN_TOKEN });
    assert.equal(first.expiring.length, 1, 'the environment token was recorded and given an expiry');
    assert.equal(first.expiring[0]?.source, 'environment');
    assert.notEqual(first.token, ADMIN_TOKEN);

    assert.equal((await metrics(ADMIN_TOKEN)).status, 200, 'old token during the overlap');
    assert.equal((await metrics(first.token)).status, 200, 'new token during the overlap');

    // The overlap ends: move the expiry into the past rather than waiting ten minutes.
    await pool.query("UPDATE admin_tokens SET expires_at = now() - interval '1 second' WHERE id = $1::uuid", [first.expiring[0]?.id]);
    const old = await metrics(ADMIN_TOKEN);
    assert.equal(old.status, 403, 'old token after the overlap');
    assert.match(old.json.error.message, /expired at .* after a credential rotation/);
    assert.equal((await metrics(first.token)).status, 200, 'new token after the overlap');

    // A second rotation overlaps the first new token with the next one, the same way.
    const second = await rotateAdminTokens(pool, { createdBy: 'test', overlapMs: 60_000, environmentToken: ADMIN_TOKEN });
    assert.deepEqual(
      second.expiring.map((token) => token.id),
      [first.record.id],
      'only live tokens get the expiry; the expired one stays expired',
    );
    assert.equal((await metrics(first.token)).status, 200);
    assert.equal((await metrics(second.token)).status, 200);
    await revokeAdminToken(pool, first.record.id, 'test');
    const revoked = await metrics(first.token);
    assert.equal(revoked.status, 403);
    assert.match(revoked.json.error.message, /revoked/);

    const states = Object.fromEntries((await listAdminTokens(pool)).map((token) => [token.id, token.state]));
    assert.equal(states[first.record.id], 'revoked');
    assert.equal(states[second.record.id], 'active');
    assert.equal((await metrics('not-a-token-at-all-0123456789')).status, 403);
  });

  test('a token is checked in constant time against ADMIN_TOKEN and by its hash in the database; none at all means admin is off', async () => {
    const { pool } = api.server.database;
    await pool.query('DELETE FROM admin_tokens');
    assert.deepEqual(await verifyAdminToken(pool, undefined, undefined), { ok: false, reason: 'disabled' });
    assert.deepEqual(await verifyAdminToken(pool, 'whatever-token-value', undefined), { ok: false, reason: 'disabled' });
    const issued = await issueAdminToken(pool, { label: 'test', createdBy: 'test', expiresAt: new Date(Date.now() + 60_000) });
    assert.deepEqual(await verifyAdminToken(pool, undefined, undefined), { ok: false, reason: 'missing' });
    assert.equal((await verifyAdminToken(pool, issued.token, undefined)).ok, true, 'an issued token works without ADMIN_TOKEN');
    assert.equal((await verifyAdminToken(pool, ADMIN_TOKEN, ADMIN_TOKEN)).ok, true);
    const { rows } = await pool.query<{ hex: string }>("SELECT encode(token_hash, 'hex') AS hex FROM admin_tokens");
    assert.ok(
      rows.every((row) => !row.hex.includes(Buffer.from(issued.token).toString('hex'))),
      'only the hash is stored',
    );
  });
});
