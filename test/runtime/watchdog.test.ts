/**
 * The watchdog: two API instances with their workers on one PostgreSQL database, alerting on
 * the runbook's numbers through the PagerDuty and Slack fakes. Each condition raises one
 * alert (however many evaluations and instances see it), and resolves it with the same dedup
 * key when it clears. Errors and slow responses are real: requests served by one instance
 * while another session holds a lock they need, until the statement timeout answers 500.
 *
 * Nothing waits on the clock: the evaluation runs every second here (ALERT_EVALUATION_INTERVAL),
 * and the tests poll for what the fakes received, under the suite's hang guard.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { createLogger } from '../../src/log.ts';
import { gatherHealth } from '../../src/ops/diagnostics/health.ts';
import { runProcedure } from '../../src/ops/engine/index.ts';
import { dbBackup } from '../../src/ops/procedures/db-backup.ts';
import { evaluationStatus } from '../../src/ops/watchdog/alert-state.ts';
import { dedupKeyFor } from '../../src/ops/watchdog/evaluate.ts';
import type { WatchedCondition } from '../../src/ops/watchdog/conditions.ts';
import { addSchedule, recordOutcome, validateSpec } from '../../src/scheduler/schedules.ts';
import { startServer, type RunningServer } from '../../src/runtime/server.ts';
import { fakeRoutingKey, startPagerDuty, type FakePagerDuty } from '../fakes/pagerduty.ts';
import { startSlackWebhook, type FakeSlackWebhook } from '../fakes/slack.ts';
import { ADMIN_TOKEN } from '../helpers/api.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { BUSY_MACHINE_ENV, eventually } from '../helpers/patience.ts';

const logger = createLogger('silent');

describe('the watchdog', () => {
  let database: TestDatabase;
  let state: { path: string; cleanup(): Promise<void> };
  let slack: FakeSlackWebhook;
  let pagerDuty: FakePagerDuty;
  let admin: pg.Pool;
  /** `a` and `b`: two instances with workers; `b` answers 500 after 2 s of waiting on a lock. */
  const instances: Record<'a' | 'b', { server: RunningServer; config: Config }> = {} as never;

  before(async () => {
    [database, state, slack, pagerDuty] = await Promise.all([createTestDatabase(), createStateDir(), startSlackWebhook(), startPagerDuty()]);
    admin = new pg.Pool({ connectionString: database.url, max: 2 });
    const routingKey = fakeRoutingKey();
    for (const name of ['a', 'b'] as const) {
      const config = loadConfig({
        ...BUSY_MACHINE_ENV,
        PORT: '0',
        DATABASE_URL: database.url,
        STATE_DIR: path.join(state.path, name),
        BACKUP_STORAGE_URL: `file://${path.join(state.path, 'backups')}`,
        ADMIN_TOKEN,
        LOG_LEVEL: 'silent',
        SLACK_WEBHOOK_URL: slack.url,
        PAGERDUTY_ROUTING_KEY: routingKey,
        PAGERDUTY_EVENTS_URL: pagerDuty.baseUrl,
        ALERT_EVALUATION_INTERVAL: '1s',
        METRICS_FLUSH_INTERVAL: '1s',
        SHIPSHAPE_OPERATOR: 'alice',
        ...(name === 'b' ? { DATABASE_STATEMENT_TIMEOUT_MS: '2000' } : {}),
      });
      instances[name] = { server: await startServer(config, logger, { migrate: name === 'a', workers: true }), config };
    }
  });

  after(async () => {
    for (const instance of Object.values(instances)) await instance.server.close();
    await admin?.end();
    await pagerDuty?.close();
    await slack?.close();
    await database?.drop();
    await state?.cleanup();
  });

  const events = (condition: WatchedCondition, action: 'trigger' | 'resolve') =>
    pagerDuty.events.filter((event) => event.dedupKey === dedupKeyFor(condition) && event.action === action);
  const slackTitled = (title: RegExp) => slack.messages.filter((message) => title.test(message.payload.text ?? ''));
  const evaluations = async () => (await evaluationStatus(admin)).evaluations;

  /** Waits until `n` more evaluations have started (by either instance). */
  async function moreEvaluations(n: number): Promise<void> {
    const from = await evaluations();
    await eventually(`${n} more evaluations`, async () => ((await evaluations()) >= from + n ? true : undefined));
  }

  async function alertRow(condition: WatchedCondition): Promise<{ status: string; delivered: boolean } | undefined> {
    const { rows } = await admin.query<{ status: string; delivered: boolean }>('SELECT status, delivered FROM watchdog_alerts WHERE condition = $1', [
      condition,
    ]);
    return rows[0];
  }

  test('no verified backup pages once (PagerDuty trigger with a dedup key, Slack), however often it is evaluated; a verified backup resolves it', async () => {
    await eventually('the backup alert', async () => (events('backup-age', 'trigger').length > 0 ? true : undefined));
    const [trigger] = events('backup-age', 'trigger');
    assert.equal(trigger?.dedupKey, 'shipshape-watchdog-backup-age');
    assert.match(String((trigger?.body['payload'] as Record<string, unknown>)['summary']), /No verified backup in the last 26h/);
    await eventually('the Slack message', async () => (slackTitled(/No verified backup/).length > 0 ? true : undefined));
    assert.match(slackTitled(/No verified backup/)[0]?.payload.text ?? '', /no verified backup of shipshape_test_\w+ in backup storage/);

    await moreEvaluations(3);
    assert.equal(events('backup-age', 'trigger').length, 1, 'still one page after more evaluations on two instances');
    assert.equal(slackTitled(/No verified backup/).length, 1, 'and one Slack message');
    assert.deepEqual(await alertRow('backup-age'), { status: 'firing', delivered: true });

    const backup = await runProcedure(dbBackup, {}, { yes: true }, { config: instances.a.config, logger });
    assert.equal(backup.exitCode, 0);
    await eventually('the resolve', async () => (events('backup-age', 'resolve').length > 0 ? true : undefined));
    await eventually('the Slack "resolved" message', async () => (slackTitled(/Resolved: No verified backup/).length > 0 ? true : undefined));
    assert.equal(pagerDuty.incidents.get('shipshape-watchdog-backup-age')?.status, 'resolved');
    await moreEvaluations(2);
    assert.equal(events('backup-age', 'resolve').length, 1, 'resolved once');
    assert.deepEqual(await alertRow('backup-age'), { status: 'resolved', delivered: true });
  });

  test('5xx and slow answers on one instance raise the error-rate and p95 alerts once, seen deployment-wide; more good traffic resolves them', async () => {
    const a = instances.a.server.url;
    const b = instances.b.server.url;
    const register = await fetch(`${b}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'watched@example.com', password: 'correct horse battery' }),
    });
    const { token } = (await register.json()) as { token: string };
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${a}/config`)).status, 200);

    // Another session holds the sessions table, as a long migration would: b's requests wait
    // until its statement timeout and answer 500.
    const locker = await admin.connect();
    let failed = 0;
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE');
      while (events('error-rate', 'trigger').length === 0) {
        const response = await fetch(`${b}/tasks`, { headers: { authorization: `Bearer ${token}` } });
        assert.ok(response.status >= 500, `answered ${response.status}`);
        failed++;
        // Room for the flush and an evaluation before another failure is added.
        await moreEvaluations(3);
        assert.ok(failed < 100, 'the alert came');
      }
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
    await eventually('the p95 alert', async () => (events('latency-p95', 'trigger').length > 0 ? true : undefined));
    assert.match(String((events('error-rate', 'trigger')[0]?.body['payload'] as Record<string, unknown>)['summary']), /Error rate at or above 0\.1%/);

    const metrics = (await (await fetch(`${a}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as Record<string, number>;
    assert.ok(metrics.errorRate! > 0.001, `instance a reports b's errors: ${JSON.stringify(metrics)}`);
    assert.ok(metrics.p95ResponseTime! >= 500, JSON.stringify(metrics));
    assert.equal(metrics.instances, 2);
    assert.equal(metrics.windowSeconds, 300);
    const health = await gatherHealth(
      loadConfig({
        DATABASE_URL: database.url,
        STATE_DIR: path.join(state.path, 'a'),
        BACKUP_STORAGE_URL: `file://${path.join(state.path, 'backups')}`,
        ADMIN_TOKEN,
        API_URL: b,
      }),
      logger,
    );
    const check = health.checks.find((c) => c.name === 'metrics');
    assert.equal(check?.status, 'fail', 'health fails on the same numbers');
    assert.match(check?.summary ?? '', /across 2 instance\(s\).*error rate .* ≥ 0\.1%/);

    await moreEvaluations(3);
    assert.equal(events('error-rate', 'trigger').length, 1, 'one page while it persists');
    assert.equal(events('latency-p95', 'trigger').length, 1);

    // Good answers dilute the failures below 0.1 % (or the failures leave the 5-minute window).
    while (events('error-rate', 'resolve').length === 0 || events('latency-p95', 'resolve').length === 0) {
      for (let round = 0; round < 10; round++) {
        const answers = await Promise.all(
          Array.from({ length: 50 }, (_, i) => fetch(`${i % 2 === 0 ? a : b}/config`).then((response) => response.arrayBuffer())),
        );
        assert.equal(answers.length, 50);
      }
      await moreEvaluations(2);
    }
    assert.equal(pagerDuty.incidents.get('shipshape-watchdog-error-rate')?.status, 'resolved');
    assert.equal(pagerDuty.incidents.get('shipshape-watchdog-latency-p95')?.status, 'resolved');
    assert.equal(slackTitled(/Resolved: Error rate at or above/).length, 1);
  });

  test('a failed scheduled run and a failed push each raise one alert, and clear when a run succeeds and the failure ages out', async () => {
    await addSchedule(admin, validateSpec({ name: 'nightly-backup', task: 'backup', recurrence: 'every day at 04:00', timeZone: 'UTC' }), {
      actor: 'test',
      start: true,
      reservedNames: [],
    });
    await recordOutcome(admin, 'nightly-backup', 'due 2026-03-01T04:00:00.000Z: backup failed: storage refused the upload', false);
    const failedPush = await admin.query<{ id: string }>(
      `INSERT INTO notification_jobs (title, body, priority, requested_by, status, error, finished_at)
       VALUES ('Maintenance tonight', 'From 02:00', 'default', 'test', 'failed', 'every chunk failed', now()) RETURNING id`,
    );
    await eventually('both alerts', async () =>
      events('failed-jobs', 'trigger').length > 0 && events('failed-notifications', 'trigger').length > 0 ? true : undefined,
    );
    const text = slackTitled(/Scheduled jobs failed/)[0]?.payload.text ?? '';
    assert.match(text, /nightly-backup \(due 2026-03-01T04:00:00\.000Z: backup failed: storage refused the upload\)/);
    assert.match(slackTitled(/Push notifications failed/)[0]?.payload.text ?? '', /"Maintenance tonight"/);

    await recordOutcome(admin, 'nightly-backup', 'due 2026-03-02T04:00:00.000Z: backup b-… taken and verified', true);
    await admin.query("UPDATE notification_jobs SET finished_at = now() - interval '25 hours' WHERE id = $1", [failedPush.rows[0]!.id]);
    await eventually('both resolves', async () =>
      events('failed-jobs', 'resolve').length > 0 && events('failed-notifications', 'resolve').length > 0 ? true : undefined,
    );
    assert.equal(events('failed-jobs', 'trigger').length, 1);
    assert.equal(events('failed-notifications', 'trigger').length, 1);
  });
});
