/**
 * `shipshape notify …` as an operator runs it: a send to the loopback Expo, bad input refused
 * with exit 2, and a send whose process is killed (SIGKILL) while Expo holds a request, then
 * resumed: no device gets the notification twice, and the one request in flight is reported
 * in doubt rather than sent again.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { runCli, spawnCli } from '../helpers/cli.ts';
import { openMigratedDatabase, type MigratedDatabase } from '../helpers/migrated-database.ts';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';

describe('shipshape notify', () => {
  let db: MigratedDatabase;
  let expo: FakeExpo;
  let env: Record<string, string>;
  let tokens: string[] = [];

  before(async () => {
    db = await openMigratedDatabase();
    expo = await startFakeExpo({ accessToken: 'cli-expo-token' });
    env = { DATABASE_URL: db.config.databaseUrl!, EXPO_PUSH_URL: expo.pushUrl, EXPO_ACCESS_TOKEN: 'cli-expo-token', SHIPSHAPE_OPERATOR: 'alice' };
    const pool = db.database.pool;
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO users (email, password_hash) SELECT 'cli-' || g || '@example.com', 'x' FROM generate_series(1, 550) g RETURNING id`,
    );
    tokens = rows.map((_, i) => `ExponentPushToken[cli-${i}]`);
    await pool.query(`INSERT INTO devices (token, user_id, platform) SELECT t, u, 'android' FROM unnest($1::text[], $2::uuid[]) AS x(t, u)`, [
      tokens,
      rows.map((row) => row.id),
    ]);
  });
  after(async () => {
    await expo.close();
    await db.close();
  });

  test('send delivers to every device once and prints the job; status shows it', async () => {
    const before = expo.deliveries.length;
    const result = await runCli(
      [
        'notify',
        'send',
        '--title',
        'Temporary Maintenance',
        '--body',
        'Thank you for your patience.',
        '--priority',
        'high',
        '--data',
        '{"screen":"status"}',
        '--json',
      ],
      env,
    );
    assert.equal(result.code, 0, result.stderr);
    const { job } = JSON.parse(result.stdout);
    assert.equal(job.status, 'done');
    assert.equal(job.recipients, 550);
    assert.equal(job.chunks.sent, 6);
    assert.equal(expo.deliveries.length - before, 550);
    const sample = expo.deliveries.at(-1);
    assert.equal(sample?.priority, 'high');
    assert.deepEqual(sample?.data, { screen: 'status' });
    assert.doesNotMatch(result.stdout + result.stderr, /cli-expo-token/);

    const status = await runCli(['notify', 'status', job.id], env);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`notification ${job.id}: done`));
    assert.match(status.stdout, /devices\s+550 in 6 chunk/);
    const { rows } = await db.database.pool.query(`SELECT actor FROM audit_log WHERE action = 'admin.notifications.sent' AND details->>'job' = $1`, [job.id]);
    assert.deepEqual(rows, [{ actor: 'operator:alice' }]);
  });

  test('a send Expo cannot be reached for exits 1 and says why (connection refused), and is listed failed with the cause', async () => {
    const port = await closedPort();
    const result = await runCli(['notify', 'send', '--title', 'Nobody hears this', '--body', 'Expo is down.'], {
      ...env,
      EXPO_PUSH_URL: `http://127.0.0.1:${port}/--/api/v2/push/send`,
    });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /6 of 6 chunk\(s\) failed and were not delivered \(cause: could not connect to Expo: .*ECONNREFUSED/);
    assert.match(result.stderr, /notify resume .* --retry-failed/);
    const list = await runCli(['notify', 'list', '--status', 'failed', '--json'], env);
    assert.equal(list.code, 0, list.stderr);
    const listed = (JSON.parse(list.stdout).notifications as Array<Record<string, any>>).find((n) => n.title === 'Nobody hears this');
    assert.ok(listed, list.stdout);
    assert.equal(listed.status, 'failed');
    assert.match(String(listed.error), /6 of 6 chunk\(s\) failed, not delivered: could not connect to Expo: .*ECONNREFUSED/);
  });

  test('bad input is refused with exit 2 before anything is sent', async () => {
    const before = expo.requests.length;
    const cases: Array<[string[], RegExp]> = [
      [['notify', 'send', '--title', 'x'], /--body/],
      [['notify', 'send', '--title', 'x', '--body', 'y', '--priority', 'urgent'], /default, normal or high/],
      [['notify', 'send', '--title', 'x', '--body', 'y', '--data', '[1,2]'], /JSON object/],
      [['notify', 'send', '--title', ' ', '--body', 'y'], /title/],
      [['notify', 'status', 'not-a-job'], /not a notification job id/],
      [['notify', 'receipts', '--min-age', 'soon'], /duration/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(args, env);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
    assert.equal(expo.requests.length, before);
    const unknown = await runCli(['notify', 'status', randomUUID()], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /No notification job/);
  });

  test('killed mid-send and resumed: nobody gets it twice; the request in flight is in doubt, not repeated', async () => {
    const startDeliveries = expo.deliveries.length;
    const held = expo.holdSend(3);
    const sending = spawnCli(['notify', 'send', '--title', 'Crash test', '--body', 'b'], env);
    await held;
    sending.child.kill('SIGKILL');
    const { signal, stderr } = await sending.done;
    assert.equal(signal, 'SIGKILL');
    const jobId = /notification ([0-9a-f-]{36}):/.exec(stderr)?.[1];
    assert.ok(jobId, stderr);

    const resumed = await runCli(['notify', 'resume', jobId, '--json'], env);
    // Exit 1: the send finished, but the chunks that were in flight are in doubt and the operator
    // should know. The held one certainly is; on a busy machine the kill may also catch the next
    // one (up to four requests are in flight) between being marked `sending` and its answer.
    assert.equal(resumed.code, 1, resumed.stderr);
    const { job } = JSON.parse(resumed.stdout);
    assert.equal(job.status, 'done');
    assert.ok(job.chunks.inDoubt >= 1 && job.chunks.inDoubt <= 4, `chunks in doubt: ${job.chunks.inDoubt}`);
    assert.match(resumed.stderr, new RegExp(`${job.chunks.inDoubt} chunk\\(s\\) are in doubt`));
    assert.equal(job.chunks.sent + job.chunks.inDoubt, 6, 'every chunk was sent once or is in doubt');

    const counts = new Map<string, number>();
    for (const delivery of expo.deliveries.slice(startDeliveries)) counts.set(delivery.to, (counts.get(delivery.to) ?? 0) + 1);
    assert.ok(
      [...counts.values()].every((count) => count === 1),
      'no device got the notification twice',
    );
    // Only the devices of chunks in doubt can have missed it (at most one request of 100 each).
    assert.ok(counts.size >= tokens.length - 100 * (job.chunks.inDoubt - 1), `${counts.size} of ${tokens.length} devices reached`);

    const again = await runCli(['notify', 'resume', jobId], env);
    assert.equal(again.code, 1, 'still reports the chunk in doubt');
    assert.equal(expo.deliveries.length - startDeliveries, tokens.length, 'resuming a finished job sends nothing');
  });
});

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  await new Promise((resolve) => server.close(resolve));
  return port;
}
