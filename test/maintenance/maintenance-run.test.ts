/**
 * `shipshape maintenance run` end to end through the CLI, on PostgreSQL, against a running
 * API, with Slack and PagerDuty on loopback:
 * - every step of the runbook's maintenance.sh runs, each logged to maintenance.log; old logs
 *   go, the rotated admin token is revealed once and works beside the old one;
 * - a step failing in the middle (the smoke tests) stops the run with maintenance still on,
 *   pages, exits 4 with the engine's message naming what is still in effect and what is left.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { shipshapeProfile } from '../../src/app-profile.ts';
import { Migrator } from '../../src/db/migrator.ts';
import { createLogger } from '../../src/log.ts';
import { startPagerDuty, fakeRoutingKey, type FakePagerDuty } from '../fakes/pagerduty.ts';
import { startSlackWebhook, type FakeSlackWebhook } from '../fakes/slack.ts';
import { ADMIN_TOKEN, startTestApi, type TestApi } from '../helpers/api.ts';
import { runCli } from '../helpers/cli.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';

const DAY_MS = 86_400_000;

describe('maintenance run', () => {
  let api: TestApi;
  let slack: FakeSlackWebhook;
  let pagerDuty: FakePagerDuty;
  let state: { path: string; cleanup(): Promise<void> };
  let other: TestDatabase;
  const routingKey = fakeRoutingKey();

  before(async () => {
    [slack, pagerDuty] = await Promise.all([startSlackWebhook(), startPagerDuty()]);
    api = await startTestApi();
    state = await createStateDir();
    // A database one release behind: this release's migration (0005) is still pending.
    other = await createTestDatabase();
    const pool = new pg.Pool({ connectionString: other.url });
    try {
      const outcome = await new Migrator(pool, shipshapeProfile.migrations, createLogger('silent')).up({ to: 4 });
      assert.equal(outcome.error, undefined);
    } finally {
      await pool.end();
    }
  });
  after(async () => {
    await api?.close();
    await other?.drop();
    await state?.cleanup();
    await slack?.close();
    await pagerDuty?.close();
  });

  const envFor = (databaseUrl: string, stateDir: string, logDir: string) => ({
    DATABASE_URL: databaseUrl,
    STATE_DIR: stateDir,
    ADMIN_TOKEN,
    API_URL: api.url,
    APP_LOG_DIR: logDir,
    SLACK_WEBHOOK_URL: slack.url,
    PAGERDUTY_ROUTING_KEY: routingKey,
    PAGERDUTY_EVENTS_URL: pagerDuty.baseUrl,
    SHIPSHAPE_OPERATOR: 'alice',
  });

  async function logFolder(name: string): Promise<{ dir: string; old: string[]; recent: string[] }> {
    const dir = path.join(state.path, name);
    await mkdir(path.join(dir, 'worker'), { recursive: true });
    const old = [path.join(dir, 'api.log'), path.join(dir, 'worker', 'worker.log.1.gz')];
    const recent = [path.join(dir, 'api-today.log'), path.join(dir, 'notes.txt')];
    for (const file of [...old, ...recent, path.join(dir, 'notes-old.txt')]) await writeFile(file, 'line\n');
    const longAgo = new Date(Date.now() - 40 * DAY_MS);
    for (const file of [...old, path.join(dir, 'notes-old.txt')]) await utimes(file, longAgo, longAgo);
    return { dir, old, recent: [...recent, path.join(dir, 'notes-old.txt')] };
  }

  test('runs every step in order, logs each to maintenance.log, and leaves the old and the new admin token both valid', async () => {
    const stateDir = path.join(state.path, 'ok');
    const logs = await logFolder('logs-ok');
    const env = envFor(api.config.databaseUrl!, stateDir, logs.dir);
    const result = await runCli(['maintenance', 'run', '--yes', '--yes-irreversible', '--json'], env);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.state, 'succeeded');
    const steps = ['maintenance-on', 'backup', 'migrations', 'rotate-credentials', 'clear-old-logs', 'vacuum-analyze', 'smoke-tests', 'maintenance-off'];
    assert.deepEqual(
      report.steps.map((step: Record<string, unknown>) => [step.id, step.status]),
      steps.map((id) => [id, 'done']),
    );

    const log = await readFile(path.join(stateDir, 'maintenance', 'maintenance.log'), 'utf8');
    assert.match(log, /=== Maintenance Started: .* by alice ===/);
    for (const [index, id] of steps.entries()) assert.match(log, new RegExp(`step ${index + 1}/8 ${id} \\(.*\\): done`));
    assert.match(log, /=== Maintenance Completed: /);

    for (const file of logs.old) await assert.rejects(stat(file), /ENOENT/, `${file} is older than 30 days`);
    for (const file of logs.recent) await stat(file);

    assert.equal((await api.request('GET', '/health')).status, 200, 'the app is open again');
    const backupId = report.steps.find((step: Record<string, any>) => step.id === 'backup').output.backupId;
    assert.match(backupId, /^b-/);

    const revealed = await runCli(['admin-token', 'reveal'], env);
    assert.equal(revealed.code, 0, revealed.stderr);
    const newToken = revealed.stdout.trim();
    assert.ok(newToken.length >= 40);
    assert.equal((await api.request('GET', '/metrics', { token: newToken })).status, 200, 'the new admin token works');
    assert.equal((await api.request('GET', '/metrics', { token: ADMIN_TOKEN })).status, 200, 'the old one still works during the overlap');
    const again = await runCli(['admin-token', 'reveal'], env);
    assert.equal(again.code, 2, 'shown once');
    const listed = JSON.parse((await runCli(['admin-token', 'list', '--json'], env)).stdout);
    const environment = listed.tokens.find((token: Record<string, any>) => token.source === 'environment');
    assert.equal(environment.state, 'expiring');
    assert.ok(Date.parse(environment.expiresAt) - Date.now() > 23 * 3_600_000, 'old tokens expire after ADMIN_TOKEN_OVERLAP (24 h)');

    // Run again while an operator has the app closed for another reason: the run does its work
    // but does not reopen what it did not close.
    assert.equal((await api.request('POST', '/admin/maintenance', { token: ADMIN_TOKEN, body: { enabled: true, message: 'Security incident' } })).status, 200);
    const rerun = await runCli(['maintenance', 'run', '--yes', '--yes-irreversible', '--json'], env);
    assert.equal(rerun.code, 0, rerun.stderr);
    const health = await api.request('GET', '/health');
    assert.equal(health.status, 503);
    assert.equal(health.json.message, 'Security incident', 'still closed, with the operator’s message');
    assert.equal((await api.request('POST', '/admin/maintenance', { token: ADMIN_TOKEN, body: { enabled: false } })).status, 200);
    const rotation = (output: Record<string, any>) => output.steps.find((step: Record<string, any>) => step.id === 'rotate-credentials').output.adminRotation;
    assert.equal(rotation(report).rotated, true);
    assert.equal(rotation(JSON.parse(rerun.stdout)).rotated, false, 'one rotation per window');
    assert.equal(rotation(JSON.parse(rerun.stdout)).id, rotation(report).id);
  });

  test('a step failing in the middle stops the run with maintenance still on, pages, and says what is left to do', async () => {
    // The run's database is not the one the API serves, so the smoke account cannot log in there.
    const stateDir = path.join(state.path, 'failing');
    const logs = await logFolder('logs-failing');
    const env = envFor(other.url, stateDir, logs.dir);
    const result = await runCli(['maintenance', 'run', '--yes', '--yes-irreversible', '--json'], env);
    assert.equal(result.code, 4, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.state, 'needs-attention');
    assert.equal(report.exitCode, 4);
    assert.equal(report.error.code, 'SHIP_ERR_ROLLBACK_FAILED');
    const status = Object.fromEntries(report.steps.map((step: Record<string, string>) => [step.id, step.status]));
    assert.deepEqual(status, {
      'maintenance-on': 'done',
      backup: 'done',
      migrations: 'done',
      'rotate-credentials': 'done',
      'clear-old-logs': 'done',
      'vacuum-analyze': 'undone',
      'smoke-tests': 'failed',
      'maintenance-off': 'skipped',
    });
    assert.match(report.error.message, /Step smoke-tests \(Run smoke tests\) failed: Smoke tests failed: .*smoke account logs in: POST \/auth\/login → 401/);
    assert.match(report.error.message, /Maintenance mode stays ON\. Still to do: smoke-tests, maintenance-off\./);
    assert.match(report.error.message, /Rollback stopped: step clear-old-logs cannot be undone/);
    assert.match(report.error.message, /Still in effect: maintenance-on, backup, migrations, rotate-credentials, clear-old-logs/);
    assert.ok(report.next, 'the report says what to run next');

    const client = new pg.Client({ connectionString: other.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ maintenance_enabled: boolean }>('SELECT maintenance_enabled FROM app_state');
      assert.equal(rows[0]?.maintenance_enabled, true, 'maintenance mode stays on');
      const applied = await client.query<{ version: number }>('SELECT max(version)::int AS version FROM shipshape.schema_migrations');
      assert.ok((applied.rows[0]?.version ?? 0) >= 5, 'the pending migration was applied by step 3');
    } finally {
      await client.end();
    }

    const page = pagerDuty.events.find((event) => event.action === 'trigger' && event.dedupKey === `shipshape-run-${report.runId}`);
    assert.ok(page, 'the on-call was paged for the run left needing attention');
    assert.ok(
      slack.messages.some((message) => JSON.stringify(message.payload).includes(report.runId) && /attention/i.test(JSON.stringify(message.payload))),
      'and Slack heard of it',
    );
    const log = await readFile(path.join(stateDir, 'maintenance', 'maintenance.log'), 'utf8');
    assert.match(log, /step 7\/8 smoke-tests \(Run smoke tests\): FAILED — .*Still to do: smoke-tests, maintenance-off/);
    assert.match(log, /=== Maintenance stopped at smoke-tests/);
  });
});
