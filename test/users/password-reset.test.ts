/**
 * Runbook "Reset User Password", end to end over a real SMTP peer: the link arrives by email,
 * completing it through the API sets the new password once and ends every session.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createMailer } from '../../src/adapters/mailer.ts';
import { queryAudit } from '../../src/domain/audit-query.ts';
import { requestPasswordReset } from '../../src/domain/auth.ts';
import { createLogger } from '../../src/log.ts';
import { startSmtpServer, type FakeSmtpServer, type ReceivedMail } from '../fakes/smtp.ts';
import { signUp, startTestApi, type TestApi } from '../helpers/api.ts';
import { eventually } from '../helpers/patience.ts';

function tokenFrom(mail: ReceivedMail): string {
  const match = /\/reset-password\?token=([A-Za-z0-9_%-]+)/.exec(mail.text ?? '');
  assert.ok(match?.[1], `no reset link in the email text: ${mail.text}`);
  assert.match(mail.html ?? '', /href="[^"]*\/reset-password\?token=/, 'the HTML body carries the link too');
  return decodeURIComponent(match[1]);
}

describe('password reset by email', () => {
  let smtp: FakeSmtpServer;
  let api: TestApi;
  before(async () => {
    smtp = await startSmtpServer();
    api = await startTestApi({ env: { SMTP_URL: smtp.url, MAIL_FROM: 'Tasks <no-reply@tasks.test>', PUBLIC_URL: 'https://tasks.test', TRUST_PROXY: 'true' } });
  });
  after(async () => {
    await api.close();
    await smtp.close();
  });

  test('the emailed link resets the password once, ends every session, and is audited', async () => {
    const user = await signUp(api);
    const requested = await api.request('POST', '/auth/password-reset', { body: { email: user.email } });
    assert.equal(requested.status, 202);
    const mail = await smtp.waitForMessage((m) => m.to.includes(user.email));
    assert.equal(mail.envelope.from, 'no-reply@tasks.test');
    assert.match(mail.text ?? '', /https:\/\/tasks\.test\/reset-password\?token=/);
    const token = tokenFrom(mail);

    const confirmed = await api.request('POST', '/auth/password-reset/confirm', { body: { token, password: 'a completely new password' } });
    assert.equal(confirmed.status, 204);
    assert.equal((await api.request('GET', '/me', { token: user.token })).status, 401, 'the old session ended');
    assert.equal((await api.request('POST', '/auth/login', { body: { email: user.email, password: user.password } })).status, 401);
    assert.equal((await api.request('POST', '/auth/login', { body: { email: user.email, password: 'a completely new password' } })).status, 200);

    const reused = await api.request('POST', '/auth/password-reset/confirm', { body: { token, password: 'and yet another one' } });
    assert.equal(reused.status, 400);
    assert.equal(reused.json.error.code, 'SHIP_ERR_RESET_TOKEN_INVALID');

    const actions = (await queryAudit(api.server.database.pool, { userId: user.id, limit: 50 })).map((entry) => entry.action);
    for (const action of ['auth.password_reset.requested', 'auth.password_reset.completed', 'auth.login.failed', 'auth.login.succeeded']) {
      assert.ok(actions.includes(action), `audit has ${action}: ${actions.join(', ')}`);
    }
  });

  test('a newer reset email invalidates the link of an earlier one', async () => {
    // Another client address: confirmations carry no email, so they share a per-address budget.
    const headers = { 'x-forwarded-for': '198.51.100.7' };
    const user = await signUp(api);
    await api.request('POST', '/auth/password-reset', { body: { email: user.email }, headers });
    const first = tokenFrom(await smtp.waitForMessage((m) => m.to.includes(user.email)));
    await api.request('POST', '/auth/password-reset', { body: { email: user.email }, headers });
    const second = tokenFrom(await smtp.waitForMessage((m) => m.to.includes(user.email) && !m.text?.includes(encodeURIComponent(first))));
    assert.notEqual(first, second);
    assert.equal((await api.request('POST', '/auth/password-reset/confirm', { body: { token: first, password: 'first link password' }, headers })).status, 400);
    assert.equal(
      (await api.request('POST', '/auth/password-reset/confirm', { body: { token: second, password: 'second link password' }, headers })).status,
      204,
    );
  });

  test('an unknown email gets the same 202 answer and no email is sent', async () => {
    const before = smtp.messages.length;
    const known = await signUp(api);
    const forKnown = await api.request('POST', '/auth/password-reset', { body: { email: known.email } });
    await smtp.waitForMessage((m) => m.to.includes(known.email));
    const unknownEmail = `nobody-${Date.now()}@example.com`;
    const forUnknown = await api.request('POST', '/auth/password-reset', { body: { email: unknownEmail } });
    assert.equal(forUnknown.status, forKnown.status);
    assert.deepEqual(forUnknown.json, forKnown.json);
    // Requests are handled in arrival order: once a later one's email is out, the unknown one was handled.
    const later = await signUp(api);
    await api.request('POST', '/auth/password-reset', { body: { email: later.email } });
    await smtp.waitForMessage((m) => m.to.includes(later.email));
    assert.ok(!smtp.messages.slice(before).some((m) => m.to.includes(unknownEmail)));
  });

  test('the 202 is sent before the account is looked up, so its timing cannot tell who has an account', async () => {
    const user = await signUp(api);
    // With the users table locked the lookup cannot even start; the answer must not wait for it.
    const locker = await api.server.database.pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
      const requested = await api.request('POST', '/auth/password-reset', { body: { email: user.email } });
      assert.equal(requested.status, 202);
      assert.ok(!smtp.messages.some((m) => m.to.includes(user.email)), 'nothing was sent while the lookup was blocked');
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
    await smtp.waitForMessage((m) => m.to.includes(user.email));
  });
  test('at most 3 reset emails per account per hour, counted in the database, whatever the in-process limiter holds', async () => {
    const user = await signUp(api);
    for (let i = 1; i <= 3; i++) {
      const requested = await api.request('POST', '/auth/password-reset', { body: { email: user.email }, headers: { 'x-forwarded-for': `203.0.113.${i}` } });
      assert.equal(requested.status, 202);
    }
    await eventually('the three emails', () => (smtp.messages.filter((m) => m.to.includes(user.email)).length === 3 ? true : undefined));
    // What another instance (its own in-process counters) or a limiter that forgot the account would let through:
    const logger = createLogger('silent');
    const another = await requestPasswordReset(api.server.database.pool, createMailer({ smtpUrl: smtp.url, from: 'x@tasks.test' }, logger), logger, {
      email: user.email,
      ttlMinutes: 60,
      publicUrl: 'https://tasks.test',
      requestedBy: 'anonymous',
      emailsPerHour: 3,
    });
    assert.equal(await another.delivery, undefined, 'no fourth email');
    const actions = (await queryAudit(api.server.database.pool, { userId: user.id, limit: 50 })).map((entry) => entry.action);
    assert.equal(actions.filter((action) => action === 'auth.password_reset.throttled').length, 1);
  });

  test('malformed requests do not count against anyone', async () => {
    const user = await signUp(api);
    const headers = { 'x-forwarded-for': '198.51.100.200' };
    for (let i = 0; i < 15; i++) {
      assert.equal((await api.request('POST', '/auth/password-reset', { body: { email: 'not an email' }, headers })).status, 400);
    }
    assert.equal((await api.request('POST', '/auth/password-reset', { body: { email: user.email }, headers })).status, 202, 'the address still has its budget');
  });
});
