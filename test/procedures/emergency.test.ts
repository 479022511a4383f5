/**
 * `shipshape emergency disable` / `enable` (runbook: Emergency App Disable): against a real
 * API server and database and loopback Slack, PagerDuty, Expo and status page. Disable needs a
 * second operator; it turns maintenance on, sees /health answer 503 with the message, pages,
 * updates the status page and pushes at high priority. Enable reverses each step and resolves
 * the page. A change the API does not show is rolled back before anyone is paged.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/index.ts';
import { readAppState, setMaintenance } from '../../src/domain/app-state.ts';
import { registerDevice } from '../../src/domain/devices.ts';
import { createUser } from '../../src/domain/users.ts';
import { runProcedure, type EngineDeps } from '../../src/ops/engine/index.ts';
import { presentReport } from '../../src/ops/present/present.ts';
import { EMERGENCY_PAGE_KEY } from '../../src/ops/procedures/emergency-common.ts';
import { emergencyDisable } from '../../src/ops/procedures/emergency-disable.ts';
import { emergencyEnable } from '../../src/ops/procedures/emergency-enable.ts';
import { startServer, type RunningServer } from '../../src/runtime/server.ts';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';
import { fakeRoutingKey, startPagerDuty, type FakePagerDuty } from '../fakes/pagerduty.ts';
import { startSlackWebhook, type FakeSlackWebhook } from '../fakes/slack.ts';
import { startFakeStatusPage, type FakeStatusPage } from '../fakes/status-page.ts';
import { ADMIN_TOKEN } from '../helpers/api.ts';
import { runCli } from '../helpers/cli.ts';
import { BUSY_MACHINE_ENV } from '../helpers/patience.ts';
import { createStateDir } from '../helpers/postgres.ts';
import { liveFixture, logger, show, stepOutput, type LiveFixture } from '../helpers/live-operations.ts';

const DEVICE = 'ExponentPushToken[emergency-device]';
let fixture: LiveFixture;
let api: RunningServer;
let slack: FakeSlackWebhook;
let pagerDuty: FakePagerDuty;
let expo: FakeExpo;
let statusPage: FakeStatusPage;
let env: Record<string, string>;

before(async () => {
  fixture = await liveFixture();
  [slack, pagerDuty, expo, statusPage] = await Promise.all([startSlackWebhook(), startPagerDuty(), startFakeExpo(), startFakeStatusPage()]);
  const user = await createUser(fixture.pool, { email: 'someone@example.com', password: 'correct horse battery' });
  await registerDevice(fixture.pool, user.id, { token: DEVICE, platform: 'ios' });
  const state = await createStateDir();
  fixture.onCleanup(state.cleanup);
  const base = { DATABASE_URL: fixture.database.url, STATE_DIR: state.path, ADMIN_TOKEN, LOG_LEVEL: 'silent', APP_STATE_POLL_MS: '200', ...BUSY_MACHINE_ENV };
  api = await startServer(loadConfig({ ...base, PORT: '0' }), logger, { migrate: false });
  env = {
    ...base,
    API_URL: api.url,
    SLACK_WEBHOOK_URL: slack.url,
    PAGERDUTY_ROUTING_KEY: fakeRoutingKey(),
    PAGERDUTY_EVENTS_URL: pagerDuty.baseUrl,
    EXPO_PUSH_URL: expo.pushUrl,
    STATUS_PAGE_WEBHOOK_URL: statusPage.url,
    SHIPSHAPE_ALLOW_INLINE_APPROVAL: 'true',
    SHIPSHAPE_OPERATOR: 'alice',
  };
});

after(async () => {
  await api?.close();
  await Promise.all([slack?.close(), pagerDuty?.close(), expo?.close(), statusPage?.close()]);
  await fixture?.cleanup();
});

/** Engine dependencies; the engine takes its policy from the configuration (inline approval allowed here). */
async function deps(overrides: Record<string, string> = {}): Promise<EngineDeps> {
  const state = await createStateDir();
  fixture.onCleanup(state.cleanup);
  return { config: loadConfig({ ...env, STATE_DIR: state.path, ...overrides }), logger };
}

async function health(): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${api.url}/health`);
  const body: unknown = await response.json();
  return { status: response.status, body: typeof body === 'object' && body !== null ? Object.fromEntries(Object.entries(body)) : {} };
}

const approved = { yes: true, approvedBy: 'bob' };

/** An API that answers 200 ok whatever the database says: API_URL pointing at the wrong instance. */
async function withElsewhere(fn: (url: string) => Promise<void>): Promise<void> {
  const elsewhere: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok","db":"ok"}'));
  await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
  const address = elsewhere.address();
  try {
    await fn(`http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`);
  } finally {
    await new Promise<void>((resolve) => elsewhere.close(() => resolve()));
  }
}
const MESSAGE = 'Emergency maintenance: we are fixing a security issue.';

describe('emergency disable and enable', () => {
  test('disable locks users out, pages, updates the status page and pushes; enable reverses every step', async () => {
    const disabled = await runProcedure(emergencyDisable, { message: MESSAGE }, approved, await deps());
    assert.equal(disabled.exitCode, 0, show(disabled));
    const seen = await health();
    assert.equal(seen.status, 503);
    assert.equal(seen.body.message, MESSAGE);
    assert.equal(pagerDuty.incidents.get(EMERGENCY_PAGE_KEY)?.status, 'triggered');
    assert.match(JSON.stringify(slack.messages), /EMERGENCY: App disabled/);
    assert.equal(statusPage.current(), 'maintenance');
    assert.equal(statusPage.updates.at(-1)?.message, MESSAGE);
    const push = expo.deliveries.find((d) => d.to === DEVICE && d.body === MESSAGE);
    assert.equal(push?.priority, 'high');
    assert.equal(stepOutput(disabled, 'notify-incidents').paged, true);
    assert.doesNotMatch(JSON.stringify(disabled), new RegExp(statusPage.url.split('/hooks/')[1] ?? 'unused'), 'the webhook URL never reaches the report');

    const enabled = await runProcedure(emergencyEnable, {}, { yes: true }, await deps({ SHIPSHAPE_OPERATOR: 'carol' }));
    assert.equal(enabled.exitCode, 0, show(enabled));
    assert.equal((await health()).status, 200);
    assert.equal(pagerDuty.incidents.get(EMERGENCY_PAGE_KEY)?.status, 'resolved');
    assert.equal(statusPage.current(), 'operational');
    assert.ok(expo.deliveries.some((d) => d.to === DEVICE && d.title === 'We are back'));
    assert.match(JSON.stringify(slack.messages), /App re-enabled/);
  });

  test('without a second operator the run waits for approval and nothing changes (exit 3)', async () => {
    const report = await runProcedure(emergencyDisable, { message: MESSAGE }, { yes: true }, await deps());
    assert.equal(report.exitCode, 3, show(report));
    assert.equal(report.state, 'awaiting-approval');
    assert.equal((await readAppState(fixture.pool)).maintenance.enabled, false);
  });

  test('an empty or overlong message is bad input (exit 2)', async () => {
    const engine = await deps();
    for (const message of ['   ', 'x'.repeat(501)]) {
      const report = await runProcedure(emergencyDisable, { message }, approved, engine);
      assert.equal(report.exitCode, 2, show(report));
      assert.match(report.error?.message ?? '', /message/);
    }
  });

  test('when the API does not show maintenance, it is rolled back before anyone is paged or pushed to (exit 1)', async () => {
    const triggersBefore = pagerDuty.events.filter((e) => e.action === 'trigger').length;
    const pushesBefore = expo.deliveries.length;
    await withElsewhere(async (elsewhere) => {
      const report = await runProcedure(emergencyDisable, { message: 'never shown' }, approved, await deps({ API_URL: elsewhere }));
      assert.equal(report.exitCode, 1, show(report));
      assert.equal(report.state, 'rolled-back');
      assert.match(report.error?.message ?? '', /does not show maintenance mode/);
    });
    assert.equal((await readAppState(fixture.pool)).maintenance.enabled, false, 'maintenance is off again');
    assert.equal(pagerDuty.events.filter((e) => e.action === 'trigger').length, triggersBefore);
    assert.equal(expo.deliveries.length, pushesBefore);
  });

  test('rolling back puts an earlier maintenance window back as it was', async () => {
    await setMaintenance(fixture.pool, { enabled: true, message: 'Planned upgrade', setBy: 'dave' });
    try {
      await withElsewhere(async (elsewhere) => {
        const report = await runProcedure(emergencyDisable, { message: MESSAGE }, approved, await deps({ API_URL: elsewhere }));
        assert.equal(report.exitCode, 1, show(report));
      });
      const { maintenance } = await readAppState(fixture.pool);
      assert.equal(maintenance.enabled, true);
      assert.equal(maintenance.message, 'Planned upgrade');
      assert.equal(maintenance.setBy, 'dave');
    } finally {
      await setMaintenance(fixture.pool, { enabled: false, setBy: 'test' });
    }
  });

  test('a status page that is down, or an API that does not answer, does not stop the emergency', async () => {
    statusPage.failNext(1);
    const report = await runProcedure(emergencyDisable, { message: MESSAGE }, approved, await deps());
    assert.equal(report.exitCode, 0, show(report));
    assert.equal(stepOutput(report, 'status-page').posted, false);
    assert.match(String(stepOutput(report, 'status-page').error), /HTTP 500/);
    const enabled = await runProcedure(emergencyEnable, { push: false }, { yes: true }, await deps());
    assert.equal(enabled.exitCode, 0, show(enabled));
    assert.equal(stepOutput(enabled, 'push-users').skipped, true);

    // Nothing answers at API_URL: the emergency goes ahead (maintenance is on in the database),
    // but what users see could not be checked, so the run says "unverified" (exit 5), never ✓.
    const unseen = await runProcedure(emergencyDisable, { message: MESSAGE }, approved, await deps({ API_URL: 'http://127.0.0.1:9' }));
    assert.equal(unseen.exitCode, 5, show(unseen));
    assert.equal(unseen.state, 'unverified');
    assert.equal(stepOutput(unseen, 'verify-health').unreachable, true);
    const health = unseen.verification.find((check) => /GET \/health/.test(check.name));
    assert.equal(health?.ok, false);
    assert.equal(health?.unverified, true);
    const shown = presentReport(unseen, { json: false, color: false }).stdout;
    assert.match(shown, /\? verify GET \/health answers 503 with the message: unverified: /);
    assert.match(shown, /\? verify-health .*unverified: /, 'the step that could not check is not a ✓ either');
    assert.doesNotMatch(shown, /✓ verify-health/);
    assert.equal((await readAppState(fixture.pool)).maintenance.enabled, true, 'not rolled back');
    const back = await runProcedure(emergencyEnable, { push: false }, { yes: true }, await deps());
    assert.equal(back.exitCode, 0, show(back));
    assert.equal(pagerDuty.incidents.get(EMERGENCY_PAGE_KEY)?.status, 'resolved');
  });

  test('the CLI shows the plan with --dry-run', async () => {
    const result = await runCli(['emergency', 'disable', '--message', 'Down for a fix', '--dry-run'], { ...env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Enable maintenance mode/);
    assert.match(result.stdout, /shipshape-emergency-app-disabled/);
    assert.doesNotMatch(result.stdout + result.stderr, /\/hooks\//, 'the status page webhook URL is a secret');
  });
});
