/**
 * `db restore` of a database that `shipshape serve` serves with its workers (pg-boss's
 * partitioned queue tables and all), under light traffic: the restore exits 0, serve stays up
 * and answers from the restored data, the replaced database is kept as
 * `<db>__pre_restore_<run>`, and `runs rollback` renames it back.
 *
 * Before the restore was redesigned (restore beside, then swap), this failed: an in-place
 * `pg_restore --clean` cannot drop pg-boss's partitioned `queue_stats_*` tables, and the run
 * ended exit 4 with the database parked.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADMIN_TOKEN } from '../helpers/api.ts';
import { startServeProcess } from '../helpers/cli.ts';
import { ADMIN_URL, createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { eventually } from '../helpers/patience.ts';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';
import { AHEAD_SECONDS, inSeconds, makeDue, userWithDevice } from '../helpers/workers.ts';
import { databasesLike, jsonOf, shipshape, stepOutput, takeBackup, withClient } from '../helpers/backups.ts';
import { call } from '../helpers/http-call.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

type Serve = Awaited<ReturnType<typeof startServeProcess>>;

/** Light traffic: one user reads and writes tasks in a loop (logging in again when the session is gone); every answer's status is counted. */
function startTraffic(url: string, user: { email: string; password: string }) {
  let running = true;
  const statuses = new Map<number, number>();
  let rounds = 0;
  let token: string | undefined;
  const count = (status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1);
  const loop = (async () => {
    while (running) {
      try {
        if (token === undefined) {
          const login = await call(url, 'POST', '/auth/login', { body: user });
          count(login.status);
          if (login.status !== 200) {
            await sleep(login.status === 429 ? 1_000 : 100);
            continue;
          }
          token = String(login.json.token);
        }
        const created = await call(url, 'POST', '/tasks', { body: { title: `t-${randomUUID()}` }, token });
        count(created.status);
        const listed = await call(url, 'GET', '/tasks', { token });
        count(listed.status);
        if (created.status === 401 || listed.status === 401) token = undefined;
        if (created.status === 201 && listed.status === 200) rounds += 1;
        else await sleep(50);
      } catch {
        count(0);
        await sleep(50);
      }
    }
  })();
  return {
    statuses,
    rounds: () => rounds,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

describe('db restore of a database served by `shipshape serve` with its workers', () => {
  let database: TestDatabase;
  let state: Awaited<ReturnType<typeof createStateDir>>;
  let serve: Serve;
  let exited: number | null | undefined;
  let env: Record<string, string>;
  let expo: FakeExpo;

  before(async () => {
    database = await createTestDatabase('shipshape_live');
    state = await createStateDir();
    expo = await startFakeExpo({ rateLimit: false });
    env = {
      DATABASE_URL: database.url,
      STATE_DIR: state.path,
      BACKUP_STORAGE_URL: pathToFileURL(path.join(state.path, 'backups')).href,
      SHIPSHAPE_OPERATOR: 'alice',
      SHIPSHAPE_ALLOW_INLINE_APPROVAL: 'true',
      REDIS_URL,
      REDIS_PREFIX: `test-${randomUUID()}:`,
      ADMIN_TOKEN,
      EXPO_PUSH_URL: expo.pushUrl,
    };
    serve = await startServeProcess({ ...env, PORT: '0', SCHEDULER_POLL_MS: '250', APP_STATE_POLL_MS: '250' }, ['--migrate']);
    serve.child.on('exit', (code) => (exited = code));
  });

  after(async () => {
    if (serve && exited === undefined) await serve.stop();
    for (const name of await databasesLike(ADMIN_URL, `${database.name}__`).catch(() => [])) {
      await withClient(ADMIN_URL, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).catch(() => undefined);
    }
    await database?.drop();
    await state?.cleanup();
    await expo?.close();
  });

  test('the restore exits 0, serve stays up and serves the restored data, the replaced database is kept, and `runs rollback` renames it back', async () => {
    const user = { email: `live-${randomUUID()}@example.com`, password: 'correct horse battery' };
    assert.equal((await call(serve.url, 'POST', '/auth/register', { body: user })).status, 201);
    // pg-boss has created its partitioned queue tables once a job was queued and the workers ran.
    await eventually('pg-boss queue tables', () =>
      withClient(database.url, async (client) => {
        const { rows } = await client.query(
          "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'shipshape_queue' AND c.relkind = 'p'",
        );
        return rows.length > 0 ? true : undefined;
      }),
    );
    const backupId = await takeBackup(env);
    const tasksAt = async (url: string) =>
      withClient(url, async (client) => Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM tasks')).rows[0]!.n));
    const atBackup = await tasksAt(database.url);

    const traffic = startTraffic(serve.url, user);
    let restored;
    let lastSeen = '';
    try {
      await eventually('traffic to get going', () => (traffic.rounds() >= 2 ? true : undefined));
      restored = await shipshape(['db', 'restore', backupId, '--approved-by', 'bob', '--yes', '--json'], env);
      assert.equal(restored.code, 0, `${restored.stdout}\n${restored.stderr}`);
      const before = traffic.rounds();
      await eventually('traffic after the restore', () => {
        if (exited !== undefined) throw new Error(`serve exited (${exited}):\n${serve.output().slice(-4_000)}`);
        if (traffic.rounds() > before + 1) return true;
        lastSeen = `statuses ${JSON.stringify([...traffic.statuses])}\n${serve.output().slice(-3_000)}`;
        return undefined;
      });
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${lastSeen}`);
    } finally {
      await traffic.stop();
    }
    assert.equal(restored.code, 0, `${restored.stdout}\n${restored.stderr}`);
    assert.equal(exited, undefined, `serve exited:\n${serve.output().slice(-4_000)}`);
    const report = jsonOf(restored);
    const runId = String(report.runId);
    const times = stepOutput(report, 'maintenance-off');
    assert.equal(typeof times.unavailableSeconds, 'number', 'the run reports how long the application was fully unavailable');
    assert.equal(typeof times.readOnlySeconds, 'number', 'and how long it was read-only');
    console.log(
      `restore under traffic: read-only ${String(times.readOnlySeconds)} s, fully unavailable ${String(times.unavailableSeconds)} s; answers ${JSON.stringify([...traffic.statuses])}`,
    );
    const preRestore = `${database.name}__pre_restore_${runId.replace(/^r-/, '').replaceAll('-', '_')}`;
    assert.deepEqual(await databasesLike(ADMIN_URL, `${database.name}__`), [preRestore], 'the replaced database is kept, nothing else is left');
    const preRestoreUrl = database.url.replace(`/${database.name}`, `/${preRestore}`);
    const writtenBeforeSwap = await tasksAt(preRestoreUrl);
    assert.ok(writtenBeforeSwap > atBackup, 'the writes acknowledged before the restore are in the kept database');
    // Every answer was a success, or a 503 (read-only or maintenance): never a 500.
    for (const [status, count] of traffic.statuses) assert.ok((status > 0 && status < 500) || status === 503, `${count} answer(s) with status ${status}`);

    const rolledBack = await shipshape(['runs', 'rollback', runId, '--yes', '--json'], env);
    assert.equal(rolledBack.code, 0, `${rolledBack.stdout}\n${rolledBack.stderr}`);
    assert.equal(await tasksAt(database.url), writtenBeforeSwap, 'the pre-restore database is back under its own name');
    assert.deepEqual(await databasesLike(ADMIN_URL, `${database.name}__`), [], 'the restored copy is dropped by the rollback');
    await eventually('serve answering from the rolled-back database', async () =>
      (await call(serve.url, 'POST', '/auth/login', { body: user })).status === 200 ? true : undefined,
    );
    assert.equal(exited, undefined, `serve exited:\n${serve.output().slice(-4_000)}`);
  });

  test('a push scheduled before the backup and sent after it is not sent again by the restored database', async () => {
    const device = await userWithDevice(serve.url);
    const schedule = async (title: string): Promise<string> => {
      const scheduled = await shipshape(['notify', 'schedule', '--at', inSeconds(AHEAD_SECONDS), '--title', title, '--body', 'hello', '--json'], env);
      assert.equal(scheduled.code, 0, scheduled.stderr);
      const notification = jsonOf(scheduled).notification as { id: string };
      return notification.id;
    };
    const delivered = (title: string) => expo.deliveries.filter((delivery) => delivery.to === device && delivery.title === title).length;
    const statusOf = (id: string) =>
      withClient(
        database.url,
        async (client) => (await client.query<{ status: string }>('SELECT status FROM scheduled_notifications WHERE id = $1::uuid', [id])).rows[0]?.status,
      );

    const beforeTitle = `before-${randomUUID()}`;
    const before = await schedule(beforeTitle);
    const backupId = await takeBackup(env);
    await makeDue(database.url, [before]);
    await eventually('the push to be sent', async () => ((await statusOf(before)) === 'sent' && delivered(beforeTitle) === 1 ? true : undefined));

    const restored = await shipshape(['db', 'restore', backupId, '--approved-by', 'bob', '--yes', '--json'], env);
    assert.equal(restored.code, 0, `${restored.stdout}\n${restored.stderr}`);
    assert.equal(await statusOf(before), 'sent', 'the restored database knows the push was sent');

    // A push scheduled after the restore goes out: the workers ran over the restored queue by then.
    const afterTitle = `after-${randomUUID()}`;
    const after = await schedule(afterTitle);
    await makeDue(database.url, [after]);
    await eventually('the later push to be sent', async () => ((await statusOf(after)) === 'sent' ? true : undefined));
    assert.equal(delivered(afterTitle), 1);
    assert.equal(delivered(beforeTitle), 1, 'the push sent after the backup was not sent a second time');
    assert.equal(exited, undefined, `serve exited:\n${serve.output().slice(-4_000)}`);
  });
});
