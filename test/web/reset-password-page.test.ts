/**
 * The page the reset email links to, over plain HTTP as a browser with JavaScript off uses it:
 * GET shows the form, a form POST sets the password through the same domain function as the
 * API, and links that no longer work say why. Also the email's links (web page under a path
 * prefix, and the app's deep link with APP_RESET_URL) and the page's security headers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startSmtpServer, type FakeSmtpServer, type ReceivedMail } from '../fakes/smtp.ts';
import { signUp, startTestApi, type TestApi } from '../helpers/api.ts';

function linksIn(mail: ReceivedMail): string[] {
  return [...(mail.text ?? '').matchAll(/^(\S+:\/\/\S+)$/gm)].map((m) => m[1] ?? '');
}

async function postForm(api: TestApi, fields: Record<string, string>, headers: Record<string, string> = {}) {
  const response = await fetch(`${api.url}/reset-password`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

describe('password reset page', () => {
  let smtp: FakeSmtpServer;
  let api: TestApi;
  before(async () => {
    smtp = await startSmtpServer();
    api = await startTestApi({ env: { SMTP_URL: smtp.url, PUBLIC_URL: 'https://tasks.test/api/', APP_RESET_URL: 'tasks://reset-password' } });
  });
  after(async () => {
    await api.close();
    await smtp.close();
  });

  async function resetEmail(email: string): Promise<{ web: string; app: string; token: string }> {
    assert.equal((await api.request('POST', '/auth/password-reset', { body: { email } })).status, 202);
    const mail = await smtp.waitForMessage(
      (m) => m.to.includes(email) && !smtp.messages.slice(smtp.messages.indexOf(m) + 1).some((later) => later.to.includes(email)),
    );
    const [app, web] = linksIn(mail);
    assert.ok(app && web, `two links in the email: ${mail.text}`);
    return { app, web, token: new URL(web).searchParams.get('token') ?? '' };
  }

  test('the email links to the page under PUBLIC_URL (path kept) and to the app when APP_RESET_URL is set', async () => {
    const user = await signUp(api);
    const { app, web, token } = await resetEmail(user.email);
    assert.equal(web, `https://tasks.test/api/reset-password?token=${token}`);
    assert.equal(app, `tasks://reset-password?token=${token}`);
    const page = await fetch(`${api.url}/reset-password?token=${token}`);
    assert.equal(page.status, 200);
    const body = await page.text();
    assert.match(body, /<label for="password">New password<\/label>/);
    assert.match(body, /name="token" value="[A-Za-z0-9_-]+"/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'.*form-action 'self'.*frame-ancestors 'none'/);
    assert.equal(page.headers.get('cache-control'), 'no-store');
    assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
    assert.doesNotMatch(body, /<script|style=/, 'nothing inline for the CSP to allow');
  });

  test('a form POST without JavaScript sets the password once; a reused link says it was used', async () => {
    const user = await signUp(api);
    const { token } = await resetEmail(user.email);
    const mismatch = await postForm(api, { token, password: 'a new password here', confirm: 'another one' });
    assert.equal(mismatch.status, 422);
    assert.match(mismatch.text, /<title>Error: /);
    assert.match(mismatch.text, /role="alert"/);
    assert.match(mismatch.text, /id="confirm"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*id="confirm"/s);

    const done = await postForm(api, { token, password: 'a new password here', confirm: 'a new password here' });
    assert.equal(done.status, 200, done.text);
    assert.match(done.text, /Your password was changed/);
    assert.equal((await api.request('POST', '/auth/login', { body: { email: user.email, password: 'a new password here' } })).status, 200);

    const again = await postForm(api, { token, password: 'yet another password', confirm: 'yet another password' });
    assert.equal(again.status, 410);
    assert.match(again.text, /already used, or a newer reset email replaced it/);
    const reopened = await fetch(`${api.url}/reset-password?token=${token}`);
    assert.equal(reopened.status, 410);
  });

  test('expired, unknown and truncated links each say why and what to do', async () => {
    const user = await signUp(api);
    const { token } = await resetEmail(user.email);
    await api.server.database.pool.query(
      "UPDATE password_reset_tokens SET expires_at = now() - interval '1 minute' WHERE used_at IS NULL AND expires_at > now() - interval '1 minute' AND user_id = $1::uuid",
      [user.id],
    );
    const expired = await fetch(`${api.url}/reset-password?token=${token}`);
    assert.equal(expired.status, 410);
    assert.match(await expired.text(), /This link has expired/);
    assert.match(await (await fetch(`${api.url}/reset-password?token=${'x'.repeat(43)}`)).text(), /This link is not valid/);
    const cut = await fetch(`${api.url}/reset-password?token=abc`);
    assert.equal(cut.status, 400);
    assert.match(await cut.text(), /This link is incomplete/);
  });

  test('a form posted from another site is refused', async () => {
    const refused = await postForm(
      api,
      { token: 'x'.repeat(43), password: 'whatever password', confirm: 'whatever password' },
      { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
    );
    assert.equal(refused.status, 403);
    assert.match(refused.text, /SHIP_ERR_FORBIDDEN/, 'a client that does not ask for HTML gets the JSON error envelope');
    const browser = await postForm(
      api,
      { token: 'x'.repeat(43), password: 'whatever password', confirm: 'whatever password' },
      { accept: 'text/html', 'sec-fetch-site': 'cross-site' },
    );
    assert.equal(browser.status, 403);
    assert.match(browser.headers.get('content-type') ?? '', /text\/html/);
    assert.match(browser.text, /role="alert"/);
  });
});
