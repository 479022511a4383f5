/**
 * The scheduler from the command line, on PostgreSQL: `schedule list|add|pause|resume|remove`,
 * `notify schedule|list|cancel`, and `shipshape worker` delivering a scheduled notification
 * without any HTTP API, then stopping cleanly on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';
import { PROJECT_ROOT, runCli } from '../helpers/cli.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { AHEAD_SECONDS, eventually, inSeconds, makeDue } from '../helpers/workers.ts';

describe('scheduler commands', () => {
  let database: TestDatabase;
  let state: { path: string; cleanup(): Promise<void> };
  let expo: FakeExpo;
  let env: Record<string, string>;

  before(async () => {
    [database, state, expo] = await Promise.all([createTestDatabase(), createStateDir(), startFakeExpo({ rateLimit: false })]);
    env = { DATABASE_URL: database.url, STATE_DIR: state.path, EXPO_PUSH_URL: expo.pushUrl, SCHEDULER_POLL_MS: '250', SHIPSHAPE_OPERATOR: 'carol' };
    const migrated = await runCli(['db', 'migrate', 'up', '--backup', '--yes'], env);
    assert.equal(migrated.code, 0, migrated.stderr);
  });
  after(async () => {
    await expo?.close();
    await database?.drop();
    await state?.cleanup();
  });

  const json = async (args: string[]) => {
    const result = await runCli([...args, '--json'], env);
    assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
    return JSON.parse(result.stdout);
  };

  test('lists the built-in schedules (the daily backup on, the maintenance window paused), adds one in its own time zone, pauses, resumes and removes it', async () => {
    const listed = await json(['schedule', 'list']);
    assert.deepEqual(
      listed.schedules.map((s: Record<string, unknown>) => [s.name, s.paused]),
      [
        ['daily-backup', false],
        ['maintenance-window', true],
      ],
    );
    const builtIns = await runCli(['schedule', 'list'], env);
    assert.match(builtIns.stdout, /daily-backup \*\s+backup\s+every day at 03:00\s+UTC\s+on/);
    assert.match(builtIns.stdout, /opt out: `shipshape schedule pause daily-backup`/);

    const { schedule } = await json(['schedule', 'add', 'nightly-backup', '--task', 'backup', '--every', 'every day at 04:00', '--tz', 'Europe/Berlin']);
    assert.equal(schedule.paused, false);
    assert.equal(
      new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit' }).format(new Date(schedule.nextOccurrenceAt)),
      '04:00',
    );

    const text = await runCli(['schedule', 'list'], env);
    assert.match(text.stdout, /nightly-backup\s+backup\s+every day at 04:00\s+Europe\/Berlin\s+on/);
    assert.equal((await json(['schedule', 'pause', 'nightly-backup'])).schedule.nextOccurrenceAt, null);
    assert.ok((await json(['schedule', 'resume', 'nightly-backup'])).schedule.nextOccurrenceAt);
    assert.deepEqual(await json(['schedule', 'remove', 'nightly-backup']), { removed: 'nightly-backup' });

    const cron = await runCli(['schedule', 'add', 'x', '--task', 'backup', '--every', '0 4 * * *'], env);
    assert.equal(cron.code, 2);
    assert.match(cron.stderr, /is not a schedule Shipshape understands\. Write it like "every day at 03:00"/);
    const builtIn = await runCli(['schedule', 'remove', 'daily-backup'], env);
    assert.equal(builtIn.code, 2);
    assert.match(builtIn.stderr, /pause it instead/);
  });

  test('notify schedule, list and cancel work without the API', async () => {
    const { notification } = await json(['notify', 'schedule', '--at', inSeconds(3_600), '--title', 'Later', '--body', 'in an hour']);
    assert.equal(notification.status, 'pending');
    const pending = await json(['notify', 'list', '--status', 'pending']);
    assert.ok(pending.notifications.some((n: Record<string, unknown>) => n.id === notification.id));
    assert.equal((await json(['notify', 'cancel', notification.id])).notification.status, 'cancelled');
    const noOffset = await runCli(['notify', 'schedule', '--at', '2030-01-01T10:00:00', '--title', 't', '--body', 'b'], env);
    assert.equal(noOffset.code, 2);
    assert.match(noOffset.stderr, /--at: must be an ISO 8601 time with an offset/);
  });

  test('shipshape worker delivers scheduled notifications without an HTTP API and stops cleanly', async () => {
    const title = `From the worker ${randomUUID()}`;
    // Scheduled an hour ahead and made due once the worker runs: a slow CLI start on a busy
    // machine can then never put `--at` in the past.
    const { notification } = await json(['notify', 'schedule', '--at', inSeconds(AHEAD_SECONDS), '--title', title, '--body', 'hello']);
    const child = spawn(process.execPath, ['bin/shipshape.js', 'worker'], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      await eventually('the worker to start', async () => (output.includes('worker running') ? true : undefined));
      await makeDue(database.url, [notification.id]);
      const sent = await eventually('the notification to be sent', async () => {
        const list = await json(['notify', 'list', '--status', 'sent']);
        return list.notifications.find((n: Record<string, unknown>) => n.id === notification.id);
      });
      assert.equal(sent.kind, 'scheduled');
      assert.doesNotMatch(output, /listening on/, 'no HTTP API in the worker');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, output);
    assert.match(output, /stopped cleanly/);
  });
});
