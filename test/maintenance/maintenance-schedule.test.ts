/**
 * The T-72 hours part, `shipshape maintenance schedule --at`, against a server running its
 * workers (PostgreSQL, loopback Expo and SMTP): the banner is served in /config, the plan is
 * written from the run's own steps, the push goes out now (a reminder waits for T-1h), and
 * every user gets one email — also when it is run twice. Plus `maintenance plan`, and the
 * email batches themselves: rate-limited, chained, never mailing anyone twice.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createMailer } from '../../src/adapters/mailer.ts';
import { TokenBucket } from '../../src/adapters/token-bucket.ts';
import { createUser } from '../../src/domain/users.ts';
import { recordMaintenanceNotice, sendNoticeEmailBatch, cancelMaintenanceNotice } from '../../src/domain/maintenance-notices.ts';
import { createLogger } from '../../src/log.ts';
import { maintenanceRun } from '../../src/ops/procedures/maintenance-run.ts';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';
import { startSmtpServer, type FakeSmtpServer } from '../fakes/smtp.ts';
import { runCli } from '../helpers/cli.ts';
import { createStateDir } from '../helpers/postgres.ts';
import { eventually, startWorkerApi, userWithDevice, type WorkerApi } from '../helpers/workers.ts';

describe('announcing a maintenance window', () => {
  let api: WorkerApi;
  let expo: FakeExpo;
  let smtp: FakeSmtpServer;
  let cliState: { path: string; cleanup(): Promise<void> };
  let env: Record<string, string>;

  before(async () => {
    [expo, smtp, cliState] = await Promise.all([startFakeExpo({ rateLimit: false }), startSmtpServer(), createStateDir()]);
    const shared = { EXPO_PUSH_URL: expo.pushUrl, SMTP_URL: smtp.url, MAINTENANCE_EMAIL_RATE: '200', MAINTENANCE_TIME_ZONE: 'America/Los_Angeles' };
    api = await startWorkerApi({ env: shared });
    env = { ...shared, DATABASE_URL: api.database!.url, STATE_DIR: cliState.path, API_URL: api.url, SHIPSHAPE_OPERATOR: 'bob' };
  });
  after(async () => {
    await api?.close();
    await Promise.all([expo?.close(), smtp?.close(), cliState?.cleanup()]);
  });

  test('puts up the banner, writes the plan, pushes now and emails every user once, however often it is run', async () => {
    const devices = [await userWithDevice(api.url), await userWithDevice(api.url)];
    const users = devices.length;
    const { at, instant, day, stamp, zone } = firstSundayInThreeMonths();
    const first = await runCli(['maintenance', 'schedule', '--at', at, '--yes', '--json'], env);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(JSON.parse(first.stdout).state, 'succeeded');

    const config = await api.call('GET', '/config', { token: null });
    assert.ok(config.json.banner.message.startsWith(`Scheduled maintenance: ${day} at 2:00 AM ${zone}, for about 2 hours`), config.json.banner.message);
    assert.equal(config.json.banner.until, new Date(instant.getTime() + 2 * 3_600_000).toISOString());

    const plan = await readFile(path.join(cliState.path, 'maintenance', `maintenance_plan_${stamp}.md`), 'utf8');
    assert.ok(plan.startsWith(`# Maintenance Plan - ${day}\n`), plan.split('\n')[0]);
    let position = 0;
    for (const step of maintenanceRun.steps) {
      const found = plan.indexOf(step.title, position);
      assert.ok(found > position, `the plan lists "${step.title}" in the run's order`);
      position = found;
    }
    assert.match(plan, /Update dependencies — not run during the window/);
    assert.match(plan, /## Rollback Plan/);
    assert.match(plan, /Error rate < 0\.1%/);
    assert.match(plan, /Response time < 500ms p95/);

    await eventually('the announcement push', async () => (devices.every((device) => expo.deliveriesTo(device) === 1) ? true : undefined));
    const pending = await api.call('GET', '/admin/notifications?status=pending');
    const reminder = pending.json.notifications.find((n: Record<string, any>) => /starts in one hour/.test(n.body));
    assert.equal(reminder.scheduledFor, new Date(instant.getTime() - 3_600_000).toISOString(), 'the reminder waits for T-1h');

    await eventually('the emails', async () => (smtp.messages.length >= users ? true : undefined));
    const again = await runCli(['maintenance', 'schedule', '--at', at, '--yes', '--json'], env);
    assert.equal(again.code, 0, again.stderr);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(smtp.messages.length, users, 'one email per user, even announced twice');
    assert.equal(new Set(smtp.messages.flatMap((mail) => mail.to)).size, users);
    assert.equal(smtp.messages[0]!.subject, `Scheduled maintenance on ${day} at 2:00 AM ${zone}`);
    for (const device of devices) assert.equal(expo.deliveriesTo(device), 1, 'one push per device, even announced twice');
  });

  test('maintenance plan writes the plan for the next window, and refuses a time without an offset', async () => {
    const written = await runCli(['maintenance', 'plan', '--json'], env);
    assert.equal(written.code, 0, written.stderr);
    const { file, window } = JSON.parse(written.stdout);
    assert.match(path.basename(file), /^maintenance_plan_\d{8}\.md$/);
    assert.equal(new Date(window.startsAt).getUTCDay(), 0, 'a Sunday');
    assert.ok(new Date(window.startsAt).getUTCDate() <= 7, 'the first one of its month');
    assert.match(await readFile(file, 'utf8'), /## Success Criteria/);
    const bad = await runCli(['maintenance', 'plan', '--at', `${firstSundayInThreeMonths().at.slice(0, 19)}`], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--at: must be an ISO 8601 time with an offset/);
  });

  test('notice emails go out in chained batches, each user at most once, and stop when cancelled', async () => {
    const { pool } = api.server.database;
    for (let i = 0; i < 3; i += 1) await createUser(pool, { email: `batch-${i}-${Date.now()}@example.com`, password: 'correct horse battery' });
    const window = new Date('2027-04-04T09:00:00.000Z');
    await recordMaintenanceNotice(pool, {
      windowStartsAt: window,
      windowEndsAt: new Date('2027-04-04T11:00:00.000Z'),
      subject: 'batch test',
      body: 'hello',
      createdBy: 'test',
    });
    // Mark it as a worker would have, and send by hand in batches of two.
    await pool.query("UPDATE maintenance_notices SET status = 'sending' WHERE window_starts_at = $1", [window]);
    const mailer = createMailer({ smtpUrl: smtp.url, from: 'Test <test@example.com>' }, createLogger('silent'));
    const bucket = new TokenBucket({ ratePerSecond: 100, capacity: 2 });
    const before = smtp.messages.filter((mail) => mail.subject === 'batch test').length;
    assert.equal(before, 0);
    const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM users WHERE email <> 'smoke-test@shipshape.invalid'");
    const everyone = rows[0]!.n;
    let after: string | null = null;
    let batches = 0;
    for (;;) {
      const result = await sendNoticeEmailBatch(pool, mailer, window, {
        afterUserId: after,
        batchSize: 2,
        bucket,
        excludeEmail: 'smoke-test@shipshape.invalid',
      });
      batches += 1;
      if (batches === 1) {
        // The same batch again (a retried job): nobody is mailed twice.
        const retried = await sendNoticeEmailBatch(pool, mailer, window, {
          afterUserId: after,
          batchSize: 2,
          bucket,
          excludeEmail: 'smoke-test@shipshape.invalid',
        });
        assert.equal(retried.sent, 0);
        assert.equal(retried.skipped, 2);
      }
      after = result.lastUserId;
      if (result.done) break;
    }
    mailer.close();
    assert.equal(batches, Math.floor(everyone / 2) + 1);
    assert.equal(smtp.messages.filter((mail) => mail.subject === 'batch test').length, everyone);
    assert.equal(await cancelMaintenanceNotice(pool, window), false, 'nothing left to stop once done');
  });
});

/** 02:00 Los Angeles time on the first Sunday of the month three months ahead, written with its offset. */
function firstSundayInThreeMonths(): { at: string; instant: Date; day: string; stamp: string; zone: string } {
  const now = new Date();
  const first = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 3, 1));
  const sunday = new Date(first.getTime() + ((7 - first.getUTCDay()) % 7) * 86_400_000);
  const noonThere = new Date(sunday.getTime() + 20 * 3_600_000);
  const zoneName = (style: 'longOffset' | 'short') =>
    new Intl.DateTimeFormat('en-US', { timeZone: 'America/Los_Angeles', timeZoneName: style })
      .formatToParts(noonThere)
      .find((part) => part.type === 'timeZoneName')!.value;
  const date = sunday.toISOString().slice(0, 10);
  const at = `${date}T02:00:00${zoneName('longOffset').replace('GMT', '')}`;
  const instant = new Date(at);
  const day = new Intl.DateTimeFormat('en-US', { timeZone: 'America/Los_Angeles', weekday: 'long', month: 'long', day: 'numeric', year: 'numeric' }).format(
    instant,
  );
  return { at, instant, day, stamp: date.replaceAll('-', ''), zone: zoneName('short') };
}
