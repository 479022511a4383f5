/**
 * The web pages in a real browser (Debian's Chromium through playwright-core): the reset
 * email's link opened and completed, the reset form used with the keyboard only, and the status
 * page turning to "emergency" after `shipshape emergency disable`; in the console, a second
 * operator approving a waiting run, also while the first waits in the CLI with
 * `--wait-for-approval` (which then finishes the run by itself). A screenshot of each page is
 * kept in test-artifacts/.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { startSmtpServer, type FakeSmtpServer } from '../fakes/smtp.ts';
import { ADMIN_TOKEN, signUp, startTestApi, type TestApi } from '../helpers/api.ts';
import { startBrowser, screenshot, type TestBrowser } from '../helpers/browser.ts';
import { loadRun } from '../../src/ops/engine/index.ts';
import { runCli, spawnCli } from '../helpers/cli.ts';
import { eventually } from '../helpers/patience.ts';

describe('web pages in Chromium', () => {
  let smtp: FakeSmtpServer;
  let api: TestApi;
  let browser: TestBrowser;
  before(async () => {
    smtp = await startSmtpServer();
    browser = await startBrowser();
  });
  before(async () => {
    // PUBLIC_URL is filled in once the port is known: the email's link must open this very server.
    api = await startTestApi({ env: { SMTP_URL: smtp.url } });
    await api.close();
    api = await startTestApi({ env: { SMTP_URL: smtp.url, PORT: String(new URL(api.url).port), PUBLIC_URL: api.url } });
  });
  after(async () => {
    await browser?.close();
    await api?.close();
    await smtp?.close();
  });

  async function resetLinkFor(email: string): Promise<string> {
    assert.equal((await api.request('POST', '/auth/password-reset', { body: { email } })).status, 202);
    const mail = await smtp.waitForMessage((m) => m.to.includes(email));
    const link = /(http:\/\/\S+\/reset-password\?token=\S+)/.exec(mail.text ?? '')?.[1];
    assert.ok(link, `a reset link in: ${mail.text}`);
    return link;
  }

  test("the reset email's link opens the page, and completing it sets the new password", async () => {
    const user = await signUp(api);
    const link = await resetLinkFor(user.email);
    const page = await browser.newPage();
    const cspViolations: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });
    await page.goto(link);
    await screenshot(page, 'reset-password-form');
    await page.getByLabel('New password', { exact: true }).fill('chosen in the browser');
    await page.getByLabel('Type the new password again').fill('chosen in the browser');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByRole('heading', { name: 'Your password was changed' }).waitFor();
    await screenshot(page, 'reset-password-done');
    assert.equal((await api.request('POST', '/auth/login', { body: { email: user.email, password: 'chosen in the browser' } })).status, 200);

    await page.goto(link);
    await page.getByText('This link was already used').waitFor();
    await screenshot(page, 'reset-password-used-link');
    assert.deepEqual(cspViolations, [], 'the page needs nothing its CSP forbids');
    await page.close();
  });

  test('the reset form can be used with the keyboard alone, and its errors are announced', async () => {
    const user = await signUp(api);
    const page = await browser.newPage();
    await page.goto(await resetLinkFor(user.email));
    // From the top of the page: the skip link, then the two fields, then the button.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate<string | undefined>('document.activeElement?.textContent'), 'Skip to content');
    await page.keyboard.press('Tab');
    assert.equal(await focusedId(page), 'password');
    await page.keyboard.type('typed with keys only');
    await page.keyboard.press('Tab');
    assert.equal(await focusedId(page), 'confirm');
    await page.keyboard.type('typed with a typo');
    await page.keyboard.press('Enter');
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? '', /not the same/);
    assert.match(await page.title(), /^Error: /);
    assert.equal(await page.getByLabel('Type the new password again').getAttribute('aria-invalid'), 'true');
    await screenshot(page, 'reset-password-error');

    // The error links to its field; following it with Enter puts the focus there.
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate<string | undefined>("document.activeElement?.getAttribute('href')"), '#confirm');
    await page.keyboard.press('Enter');
    await page.keyboard.press('Shift+Tab');
    assert.equal(await focusedId(page), 'password');
    await page.keyboard.type('typed with keys only');
    await page.keyboard.press('Tab');
    await page.keyboard.type('typed with keys only');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Your password was changed' }).waitFor();
    assert.equal((await api.request('POST', '/auth/login', { body: { email: user.email, password: 'typed with keys only' } })).status, 200);
    await page.close();
  });

  test('the status page turns to the emergency after `shipshape emergency disable`, and back after enable', async () => {
    const page = await browser.newPage();
    await page.goto(`${api.url}/status`);
    assert.equal(await page.locator('#state').getAttribute('data-state'), 'operational');
    await screenshot(page, 'status-operational');

    const env = {
      DATABASE_URL: api.config.databaseUrl ?? '',
      STATE_DIR: api.config.stateDir,
      API_URL: api.url,
      ADMIN_TOKEN,
      SHIPSHAPE_ALLOW_INLINE_APPROVAL: 'true',
      SHIPSHAPE_OPERATOR: 'alice',
    };
    const disabled = await runCli(['emergency', 'disable', '--message', 'Investigating a security report', '--approved-by', 'bob', '--yes', '--json'], env);
    assert.equal(disabled.code, 0, disabled.stdout + disabled.stderr);
    // What a visitor sees: the page reloaded until it says so (it also refreshes itself every 30 s).
    await eventually('the status page to show the emergency', async () => {
      await page.reload();
      return (await page.locator('#state').getAttribute('data-state')) === 'emergency' ? true : undefined;
    });
    assert.match((await page.locator('#message').textContent()) ?? '', /Investigating a security report/);
    assert.match((await page.locator('#incidents').textContent()) ?? '', /Investigating a security report — ongoing/);
    await screenshot(page, 'status-emergency');
    const json = await api.request('GET', '/status.json');
    assert.equal(json.json.state, 'emergency');
    assert.equal(json.json.incidents[0].resolvedAt, null);

    const enabled = await runCli(['emergency', 'enable', '--approved-by', 'bob', '--yes', '--json'], env);
    assert.equal(enabled.code, 0, enabled.stdout + enabled.stderr);
    await eventually('the status page to show the service back', async () => {
      await page.reload();
      return (await page.locator('#state').getAttribute('data-state')) === 'operational' ? true : undefined;
    });
    await eventually('the incident to be marked resolved', async () => {
      await page.reload();
      return /resolved/.test((await page.locator('#incidents').textContent()) ?? '') ? true : undefined;
    });
    await page.close();
  });
});

function focusedId(page: Page): Promise<string | undefined> {
  // A string, not a function: the project's types have no DOM (this runs in the page).
  return page.evaluate<string | undefined>('document.activeElement?.id');
}

describe('operator console in Chromium', () => {
  let api: TestApi;
  let browser: TestBrowser;
  before(async () => {
    api = await startTestApi();
    browser = await startBrowser();
  });
  after(async () => {
    await browser?.close();
    await api?.close();
  });

  async function signIn(page: Page, operator: string): Promise<void> {
    await page.goto(`${api.url}/console`);
    await page.getByLabel('Your name').fill(operator);
    await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Runs', exact: true }).waitFor();
  }

  test('a second operator approves a waiting high-risk run from the console; the first resumes it and the log streams in', async () => {
    const env = { DATABASE_URL: api.config.databaseUrl ?? '', STATE_DIR: api.config.stateDir, API_URL: api.url, ADMIN_TOKEN, SHIPSHAPE_OPERATOR: 'alice' };
    const requested = await runCli(['emergency', 'disable', '--message', 'Rotating a leaked key', '--yes', '--json'], env);
    assert.equal(requested.code, 3, requested.stdout + requested.stderr);
    const runId = /(r-\d{8}-\d{6}-[0-9a-f]{4})/.exec(requested.stdout)?.[1];
    assert.ok(runId, requested.stdout);

    const page = await browser.newPage();
    await page.goto(`${api.url}/console`);
    assert.match(page.url(), /\/console\/login$/, 'signed out, the console asks for a sign-in');
    await screenshot(page, 'console-login');
    await signIn(page, 'alice');
    const cookie = (await browser.context.cookies()).find((c) => c.name === 'shipshape_console');
    assert.equal(cookie?.httpOnly, true);
    assert.equal(cookie?.sameSite, 'Strict');
    assert.doesNotMatch(await page.content(), new RegExp(ADMIN_TOKEN), 'the admin token is nowhere in the page');
    assert.doesNotMatch(page.url(), new RegExp(ADMIN_TOKEN));
    await screenshot(page, 'console-runs');

    // The requester sees the run waiting, and no way to approve it herself.
    await page.getByRole('link', { name: runId }).first().click();
    await page.locator('#own-run').waitFor();
    assert.equal(await page.getByRole('button', { name: /Approve/ }).count(), 0);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin token').waitFor();

    await signIn(page, 'bob');
    await page.getByRole('link', { name: runId }).first().click();
    await page.getByRole('button', { name: 'Approve as bob' }).click();
    assert.equal(await page.locator('#approved-by').textContent(), 'bob');

    // Alice, in her terminal, goes ahead; the open run page follows the journal without a reload.
    // A mark on the page as loaded (set from the test, outside the page's CSP): still there at the end means no reload.
    await page.evaluate("document.getElementById('log').dataset.loadedBefore = 'resume'");
    const resumed = await runCli(['runs', 'resume', runId, '--yes', '--json'], env);
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    await page.locator('#log', { hasText: 'ended: succeeded' }).waitFor();
    await eventually('the state shown to change', async () => ((await page.locator('#run-state').textContent()) === 'succeeded' ? true : undefined));
    assert.equal(await page.locator('#log').getAttribute('data-loaded-before'), 'resume', 'the log grew on the open page, streamed');
    await page.getByRole('link', { name: 'reload' }).click();
    await page.locator('#steps', { hasText: 'Send a push notification to users — done' }).waitFor();
    await screenshot(page, 'console-run-approved');

    await page.goto(`${api.url}/console/audit`);
    assert.match((await page.locator('#audit').textContent()) ?? '', /operator:bob\s*console\.run\.approved/);
    await screenshot(page, 'console-audit');
    await page.goto(`${api.url}/console/backups`);
    await screenshot(page, 'console-backups');
    await page.goto(`${api.url}/console/health`);
    await page.locator('#doctor').waitFor();
    await screenshot(page, 'console-health');
    await page.close();
  });

  test('the first operator waits in the CLI with --wait-for-approval; a second approves in the console and the CLI goes ahead to exit 0', async () => {
    const env = { DATABASE_URL: api.config.databaseUrl ?? '', STATE_DIR: api.config.stateDir, API_URL: api.url, ADMIN_TOKEN, SHIPSHAPE_OPERATOR: 'alice' };
    const cli = spawnCli(['emergency', 'disable', '--message', 'Approved from the console', '--yes', '--wait-for-approval'], env);
    let stderr = '';
    cli.child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const runId = await eventually(
      'alice to be waiting in her terminal',
      () => /Waiting for another operator to approve run (r-\d{8}-\d{6}-[0-9a-f]{4})/.exec(stderr)?.[1],
      {
        lastSeen: () => stderr,
      },
    );

    await browser.context.clearCookies();
    const page = await browser.newPage();
    await signIn(page, 'bob');
    await page.getByRole('link', { name: runId }).first().click();
    await screenshot(page, 'console-run-waiting');
    await page.getByRole('button', { name: 'Approve as bob' }).click();
    assert.equal(await page.locator('#approved-by').textContent(), 'bob');

    // Nobody runs `runs resume`: alice's waiting command sees the approval in the journal and goes ahead.
    const done = await cli.done;
    assert.equal(done.code, 0, done.stdout + done.stderr);
    assert.match(done.stderr, /Approved by bob/);
    assert.equal((await loadRun(api.config.stateDir, runId)).state, 'succeeded');
    await page.locator('#log', { hasText: 'ended: succeeded' }).waitFor();
    await screenshot(page, 'console-run-approved-while-cli-waited');
    await page.close();
  });
});
