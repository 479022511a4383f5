/**
 * `shipshape serve` with its workers and Redis, under light traffic, while every session of its
 * database is terminated (what `db kill-connections`, `db restore` and a DBA's
 * pg_terminate_backend do): the process stays up, requests resume by themselves, the LISTEN feed
 * reconnects and still carries changes, and pg-boss's workers still deliver a scheduled push.
 *
 * How long requests took to resume is printed (`requests resumed … after`), not asserted: load
 * on a shared 2-core machine decides it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { startFakeExpo, type FakeExpo } from '../fakes/expo.ts';
import { ADMIN_TOKEN } from '../helpers/api.ts';
import { call, type CallOptions, type Reply } from '../helpers/http-call.ts';
import { startServeProcess } from '../helpers/cli.ts';
import { ADMIN_URL, createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { eventually } from '../helpers/patience.ts';
import { userWithDevice } from '../helpers/workers.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const KILL_ROUNDS = 4;

type Serve = Awaited<ReturnType<typeof startServeProcess>>;

interface User {
  readonly email: string;
  readonly password: string;
  /** Each user signs in from an address of its own (serve trusts X-Forwarded-For here), as app users do. */
  readonly address: string;
  /** Kept between rounds like the app keeps it: the sign-in rate limits would rightly refuse a login every round. */
  token?: string | undefined;
}

const credentials = (user: User) => ({ body: { email: user.email, password: user.password }, headers: { 'x-forwarded-for': user.address } });

/** One user's round of what the app does: log in if needed, create, list, update, delete a task. Throws on anything but success. */
async function userRound(url: string, user: User): Promise<void> {
  const expect = (reply: Reply, status: number, what: string) => {
    if (reply.status === 401) user.token = undefined;
    if (reply.status !== status) throw new Error(`${what}: ${reply.status} ${reply.json.error?.code ?? JSON.stringify(reply.json)}`);
    return reply;
  };
  user.token ??= expect(await call(url, 'POST', '/auth/login', credentials(user)), 200, 'login').json.token as string;
  const { token } = user;
  const task = expect(await call(url, 'POST', '/tasks', { body: { title: `t-${randomUUID()}` }, token }), 201, 'create').json;
  expect(await call(url, 'GET', '/tasks', { token }), 200, 'list');
  expect(await call(url, 'PATCH', `/tasks/${task.id}`, { body: { done: true }, token }), 200, 'update');
  expect(await call(url, 'DELETE', `/tasks/${task.id}`, { token }), 204, 'delete');
}

/** Traffic from a few users in a loop until stopped; counts rounds and failures (failures are expected while sessions die). */
function startTraffic(url: string, users: readonly User[]) {
  let running = true;
  const counts = { rounds: 0, failures: 0, statuses: new Map<string, number>() };
  const loops = users.map(async (user) => {
    while (running) {
      try {
        await userRound(url, user);
        counts.rounds += 1;
      } catch (error) {
        counts.failures += 1;
        const key = (error as Error).message;
        counts.statuses.set(key, (counts.statuses.get(key) ?? 0) + 1);
        await sleep(20);
      }
    }
  });
  return {
    counts,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe('serve with workers survives its database sessions being terminated', () => {
  let database: TestDatabase;
  let state: Awaited<ReturnType<typeof createStateDir>>;
  let expo: FakeExpo;
  let serve: Serve;
  let admin: pg.Client;
  let exited: number | null | undefined;

  before(async () => {
    database = await createTestDatabase();
    state = await createStateDir();
    expo = await startFakeExpo({ rateLimit: false });
    serve = await startServeProcess(
      {
        DATABASE_URL: database.url,
        REDIS_URL,
        REDIS_PREFIX: `test-${randomUUID()}:`,
        PORT: '0',
        TRUST_PROXY: 'true',
        STATE_DIR: state.path,
        ADMIN_TOKEN,
        EXPO_PUSH_URL: expo.pushUrl,
        SCHEDULER_POLL_MS: '250',
        // Long enough that a change reaching the instance quickly came through LISTEN, not the poll.
        APP_STATE_POLL_MS: '60000',
      },
      ['--migrate'],
    );
    serve.child.on('exit', (code) => (exited = code));
    admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
  });

  after(async () => {
    await admin?.end();
    if (serve && exited === undefined) await serve.stop();
    await expo?.close();
    await database?.drop();
    await state?.cleanup();
  });

  /** Polls for a condition with a generous hang guard; gives up at once, with the server's output, if serve exited. */
  function until<T>(what: string, check: () => Promise<T | undefined>, lastSeen?: () => string): Promise<T> {
    return eventually(
      what,
      async () => {
        if (exited !== undefined) throw new Error(`serve exited (${exited}) while waiting for ${what}:\n${serve.output().slice(-4_000)}`);
        return check();
      },
      { lastSeen },
    );
  }

  /** Repeats a request until it answers `status`; a 503 right after a termination is expected, and retried. */
  async function untilAnswered(status: number, method: string, path: string, options: CallOptions = {}): Promise<Reply> {
    let last: Reply | undefined;
    return until(
      `${method} ${path} to answer ${status}`,
      async () => {
        last = await call(serve.url, method, path, options);
        return last.status === status ? last : undefined;
      },
      () => `${last?.status} ${JSON.stringify(last?.json).slice(0, 300)}`,
    );
  }

  /** Terminates every session of the database; returns how many. */
  async function terminateAll(): Promise<number> {
    const { rows } = await admin.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1::text AND pid <> pg_backend_pid()) t',
      [database.name],
    );
    return rows[0]!.n;
  }

  /** Waits until some session of the database is inside a transaction (the scheduler's tick opens one every 250 ms). */
  async function untilATransactionIsOpen(): Promise<void> {
    await until('a session inside a transaction', async () => {
      const { rows } = await admin.query('SELECT 1 FROM pg_stat_activity WHERE datname = $1::text AND xact_start IS NOT NULL AND pid <> pg_backend_pid()', [
        database.name,
      ]);
      return rows.length > 0 ? true : undefined;
    });
  }

  test('the process stays up through repeated terminations, mid-request and mid-transaction, and requests resume by themselves', async () => {
    const users = await Promise.all(
      [1, 2, 3].map(async (n) => {
        const user: User = { email: `live-${randomUUID()}@example.com`, password: 'correct horse battery', address: `198.51.100.${n}` };
        const registered = await call(serve.url, 'POST', '/auth/register', credentials(user));
        assert.equal(registered.status, 201);
        return user;
      }),
    );
    const traffic = startTraffic(serve.url, users);
    let terminated = 0;
    try {
      await until('traffic to get going', async () => (traffic.counts.rounds >= 3 ? true : undefined));
      for (let round = 0; round < KILL_ROUNDS; round++) {
        await untilATransactionIsOpen();
        terminated += await terminateAll();
        // Let the instance reconnect and the traffic get requests into flight before the next round.
        const before = traffic.counts.rounds;
        await until('traffic after a termination', async () => (traffic.counts.rounds > before ? true : undefined));
        assert.equal(exited, undefined, `serve exited (${exited}) after termination round ${round + 1}:\n${serve.output().slice(-4_000)}`);
      }
    } finally {
      await traffic.stop();
    }
    assert.ok(terminated > 0, 'sessions were terminated');
    // A request whose session died is told to retry, never that the server broke.
    for (const [failure, count] of traffic.counts.statuses) assert.match(failure, /: 503 SHIP_ERR_DATABASE_UNAVAILABLE$/, `${count} × ${failure}`);

    // Once more with the traffic stopped, then time how long the first write takes to succeed.
    // The login itself may meet a session that died in the last round: it is retried like any client would.
    const { token } = (await untilAnswered(200, 'POST', '/auth/login', credentials(users[0]!))).json;
    assert.equal(typeof token, 'string');
    await terminateAll();
    const killedAt = Date.now();
    await untilAnswered(201, 'POST', '/tasks', { body: { title: 'after' }, token });
    const resumedAfterMs = Date.now() - killedAt;
    console.log(
      `requests resumed ${resumedAfterMs} ms after every session was terminated; under traffic: ${traffic.counts.rounds} rounds, ${traffic.counts.failures} failed during ${KILL_ROUNDS} termination rounds ${JSON.stringify([...traffic.counts.statuses])}`,
    );
    await userRound(serve.url, users[0]!);
    assert.equal(exited, undefined, `serve exited:\n${serve.output().slice(-4_000)}`);
  });

  test('the LISTEN connection comes back and a maintenance toggle made in SQL reaches the instance', async () => {
    await terminateAll();
    await until('the LISTEN connection to reconnect', async () => {
      const { rows } = await admin.query(
        "SELECT 1 FROM pg_stat_activity WHERE datname = $1::text AND application_name = 'shipshape-listen' AND query LIKE 'LISTEN%'",
        [database.name],
      );
      return rows.length > 0 ? true : undefined;
    });
    const message = `Back soon ${randomUUID()}`;
    const db = new pg.Client({ connectionString: database.url });
    await db.connect();
    try {
      await db.query('UPDATE app_state SET maintenance_enabled = true, maintenance_message = $1::text, maintenance_since = now()', [message]);
      await until('/health to report the maintenance set in SQL', async () => {
        const health = await call(serve.url, 'GET', '/health');
        return health.status === 503 && health.json.message === message ? true : undefined;
      });
      await db.query('UPDATE app_state SET maintenance_enabled = false, maintenance_message = NULL, maintenance_since = NULL');
      await until('/health to be ok again', async () => ((await call(serve.url, 'GET', '/health')).status === 200 ? true : undefined));
    } finally {
      await db.end();
    }
    assert.equal(exited, undefined);
  });

  test('pg-boss workers keep running: a notification scheduled after the terminations is sent', async () => {
    const device = await userWithDevice(serve.url);
    await terminateAll();
    const title = `After the kill ${randomUUID()}`;
    const scheduled = await until('the schedule request to be accepted', async () => {
      const reply = await call(serve.url, 'POST', '/admin/notifications/schedule', {
        body: { scheduledFor: new Date(Date.now() + 2_000).toISOString(), title, body: 'still here' },
        token: ADMIN_TOKEN,
      });
      return reply.status === 201 ? reply : undefined;
    });
    // Terminated again while it waits to be due: the worker must pick it up regardless.
    await terminateAll();
    await until('the scheduled notification to reach Expo', async () => (expo.deliveries.some((d) => d.title === title && d.to === device) ? true : undefined));
    const listed = await until('it to be listed as sent', async () => {
      const list = await call(serve.url, 'GET', '/admin/notifications?status=sent', { token: ADMIN_TOKEN });
      return (list.json.notifications as Array<Record<string, any>> | undefined)?.find((n) => n.id === scheduled.json.notification.id);
    });
    assert.equal(listed.recipients, 1);
    assert.equal(exited, undefined);
  });

  test('the instance still stops cleanly on SIGTERM', async () => {
    assert.equal(exited, undefined);
    assert.equal(await serve.stop(), 0);
  });
});
