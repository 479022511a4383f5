/**
 * Self-service GDPR requests through the API: `DELETE /me` signs out everywhere and blocks login
 * with a 403 that says how to cancel; `POST /me/restore` cancels within the grace period;
 * `GET /me/export` gives the user their data.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { queryAudit } from '../../src/domain/audit-query.ts';
import { findPendingDeletion } from '../../src/domain/deletion-requests.ts';
import { startSmtpServer, type FakeSmtpServer } from '../fakes/smtp.ts';
import { signUp, startTestApi, type TestApi } from '../helpers/api.ts';

describe('self-service deletion and export', () => {
  let api: TestApi;
  let smtp: FakeSmtpServer;
  before(async () => {
    smtp = await startSmtpServer();
    api = await startTestApi({ env: { SMTP_URL: smtp.url, DELETION_GRACE_DAYS: '30' } });
  });
  after(async () => {
    await api.close();
    await smtp.close();
  });

  test('DELETE /me needs the password, then signs out everywhere and blocks login with a 403 saying how to cancel', async () => {
    const user = await signUp(api);
    const other = await api.request('POST', '/auth/login', { body: { email: user.email, password: user.password } });

    const wrong = await api.request('DELETE', '/me', { token: user.token, body: { password: 'not my password' } });
    assert.equal(wrong.status, 401);
    assert.equal((await api.request('GET', '/me', { token: user.token })).status, 200, 'a wrong password changes nothing');
    assert.equal((await api.request('DELETE', '/me', { token: user.token })).status, 400, 'no body, no deletion');

    const deleted = await api.request('DELETE', '/me', { token: user.token, body: { password: user.password } });
    assert.equal(deleted.status, 202);
    assert.equal(deleted.json.status, 'scheduled');
    const dueInDays = (Date.parse(deleted.json.deletionDueAt) - Date.now()) / 86_400_000;
    assert.ok(dueInDays > 29.9 && dueInDays <= 30, `due in ${dueInDays} days`);
    assert.match(deleted.json.message, /POST \/me\/restore/);

    for (const token of [user.token, other.json.token]) assert.equal((await api.request('GET', '/me', { token })).status, 401);
    const refused = await api.request('POST', '/auth/login', { body: { email: user.email, password: user.password } });
    assert.equal(refused.status, 403);
    assert.equal(refused.json.error.code, 'SHIP_ERR_ACCOUNT_PENDING_DELETION');
    assert.match(refused.json.error.message, /scheduled for deletion on \d{4}-\d\d-\d\dT.*POST \/me\/restore/);
    const wrongPassword = await api.request('POST', '/auth/login', { body: { email: user.email, password: 'not my password' } });
    assert.equal(wrongPassword.status, 401, 'without the password nobody learns the account is pending deletion');

    const mail = await smtp.waitForMessage((m) => m.to.includes(user.email));
    assert.match(mail.subject, /scheduled for deletion/);

    const pending = await findPendingDeletion(api.server.database.pool, user.id);
    assert.equal(pending?.requestedBy, `user:${user.id}`);
    assert.match(pending?.identityReference ?? '', /self-service/);
  });

  test('POST /me/restore with the password cancels the request and signs the user in again', async () => {
    const user = await signUp(api);
    await api.request('DELETE', '/me', { token: user.token, body: { password: user.password } });

    const wrong = await api.request('POST', '/me/restore', { body: { email: user.email, password: 'not my password' } });
    assert.equal(wrong.status, 401);
    const restored = await api.request('POST', '/me/restore', { body: { email: user.email, password: user.password } });
    assert.equal(restored.status, 200);
    assert.equal(restored.json.status, 'restored');
    assert.equal((await api.request('GET', '/me', { token: restored.json.token })).status, 200);
    assert.equal((await api.request('POST', '/auth/login', { body: { email: user.email, password: user.password } })).status, 200);
    assert.equal(await findPendingDeletion(api.server.database.pool, user.id), undefined);

    const again = await api.request('POST', '/me/restore', { body: { email: user.email, password: user.password } });
    assert.equal(again.status, 404, 'nothing left to cancel');

    const actions = (await queryAudit(api.server.database.pool, { userId: user.id, action: 'gdpr.', limit: 10 })).map((entry) => entry.action);
    assert.deepEqual(actions, ['gdpr.deletion.cancelled', 'gdpr.deletion.requested']);
    const revoked = await queryAudit(api.server.database.pool, { userId: user.id, action: 'auth.sessions.revoked', limit: 10 });
    assert.equal(revoked[0]?.details.reason, 'deletion requested');
  });

  test('POST /me/restore refuses once the grace period is over', async () => {
    const user = await signUp(api);
    await api.request('DELETE', '/me', { token: user.token, body: { password: user.password } });
    await api.server.database.pool.query(
      "UPDATE deletion_requests SET requested_at = now() - interval '31 days', due_at = now() - interval '1 day' WHERE user_id = $1",
      [user.id],
    );
    const late = await api.request('POST', '/me/restore', { body: { email: user.email, password: user.password } });
    assert.equal(late.status, 403);
    assert.match(late.json.error.message, /grace period .* ended/);
    assert.ok(await findPendingDeletion(api.server.database.pool, user.id), 'the request still stands');
  });

  test("GET /me/export returns every table holding the user's rows, without secrets or other users' data", async () => {
    const user = await signUp(api);
    const stranger = await signUp(api);
    await api.request('POST', '/tasks', { token: user.token, body: { title: 'Buy milk, eggs and "good" bread' } });
    await api.request('POST', '/tasks', { token: stranger.token, body: { title: 'Stranger task' } });
    await api.request('PUT', '/me/preferences', { token: user.token, body: { theme: 'dark' } });

    const exported = await api.request('GET', '/me/export', { token: user.token });
    assert.equal(exported.status, 200);
    assert.equal(exported.json.userId, user.id);
    const tables = exported.json.tables as Record<string, Array<Record<string, unknown>>>;
    assert.equal(tables['public.users']?.[0]?.email, user.email);
    assert.deepEqual(
      tables['public.tasks']?.map((task) => task.title),
      ['Buy milk, eggs and "good" bread'],
    );
    assert.equal(tables['public.user_preferences']?.[0]?.theme, 'dark');
    assert.equal(tables['public.sessions']?.length, 1);
    assert.ok('public.audit_log' in tables && 'public.deletion_requests' in tables, 'empty tables are listed too');
    assert.doesNotMatch(exported.text, /password_hash|token_hash|argon2|Stranger task/);
  });
});
