/**
 * What every fault test shares: a real `shipshape serve`, a small JSON client, and light
 * traffic from a few users that keeps running while a fault is injected. The traffic records
 * every write the server acknowledged, so a test can check afterwards that none was lost.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADMIN_TOKEN } from './api.ts';
import { startServeProcess } from './cli.ts';
import { call, type Reply } from './http-call.ts';
import { eventually } from './patience.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from './postgres.ts';

export type Serve = Awaited<ReturnType<typeof startServeProcess>>;

export { call, type Reply } from './http-call.ts';

export interface User {
  readonly email: string;
  readonly password: string;
  /** Each user comes from an address of its own (serve trusts X-Forwarded-For here), as app users do. */
  readonly address: string;
}

/**
 * Users for the traffic. Enough of them, each from its own address, that a user signs in only a
 * few times per test: the sign-in rate limits (per address, per account) are working as meant
 * when they refuse a client that logs in every half second, and must not be what a test sees.
 */
export async function registerUsers(url: string, count = 6): Promise<User[]> {
  const users: User[] = [];
  for (let i = 0; i < count; i++) {
    const user = { email: `fault-${randomUUID()}@example.com`, password: 'correct horse battery', address: `198.51.100.${10 + i}` };
    const reply = await call(url, 'POST', '/auth/register', {
      body: { email: user.email, password: user.password },
      headers: { 'x-forwarded-for': user.address },
    });
    if (reply.status !== 201) throw new Error(`register: ${reply.status} ${JSON.stringify(reply.json)}`);
    users.push(user);
  }
  return users;
}

/** Each user signs in again every this many rounds: sign-in stays exercised throughout, and stays under its own rate limits. */
const SIGN_IN_EVERY = 4;

/** One user's round: sign in (now and then), create a task (kept: an acknowledged write), list. Throws on anything but success. */
async function userRound(url: string, user: User, round: number, tokens: Map<User, string>, acknowledged: Array<{ id: string; title: string }>): Promise<void> {
  const expect = (reply: Reply, status: number, what: string) => {
    if (reply.status !== status) {
      const retryAfter = reply.status === 503 && reply.headers.get('retry-after') ? ' retry-after' : '';
      throw new Error(`${what}: ${reply.status} ${reply.json.error?.code ?? JSON.stringify(reply.json).slice(0, 200)}${retryAfter}`);
    }
    return reply;
  };
  if (round % SIGN_IN_EVERY === 0 || !tokens.has(user)) {
    const login = expect(
      await call(url, 'POST', '/auth/login', { body: { email: user.email, password: user.password }, headers: { 'x-forwarded-for': user.address } }),
      200,
      'login',
    );
    tokens.set(user, String(login.json.token));
  }
  const token = tokens.get(user);
  const title = `t-${randomUUID()}`;
  const task = expect(await call(url, 'POST', '/tasks', { body: { title }, token }), 201, 'create').json;
  acknowledged.push({ id: task.id, title });
  expect(await call(url, 'GET', '/tasks?limit=5', { token }), 200, 'list');
}

export interface Traffic {
  readonly counts: { rounds: number; failures: number; readonly failuresByKind: Map<string, number> };
  /** Tasks the server answered 201 for. */
  readonly acknowledged: Array<{ id: string; title: string }>;
  /** Resolves once `n` more rounds than now have succeeded. */
  progress(what: string, n?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Traffic from `users`, one loop each, a short pause between rounds so it stays light. */
export function startTraffic(url: string, users: readonly User[], options: { exited?: () => boolean } = {}): Traffic {
  let running = true;
  const counts = { rounds: 0, failures: 0, failuresByKind: new Map<string, number>() };
  const acknowledged: Array<{ id: string; title: string }> = [];
  const tokens = new Map<User, string>();
  const loops = users.map(async (user) => {
    for (let round = 0; running; round++) {
      try {
        await userRound(url, user, round, tokens, acknowledged);
        counts.rounds += 1;
        await sleep(50);
      } catch (error) {
        counts.failures += 1;
        const kind = (error as Error).message;
        counts.failuresByKind.set(kind, (counts.failuresByKind.get(kind) ?? 0) + 1);
        await sleep(100);
      }
    }
  });
  return {
    counts,
    acknowledged,
    progress: async (what, n = 2) => {
      const target = counts.rounds + n;
      await eventually(
        what,
        () => {
          if (options.exited?.()) throw new Error(`serve exited while waiting for ${what}`);
          return counts.rounds >= target ? true : undefined;
        },
        { lastSeen: () => `${counts.rounds} rounds, failures ${JSON.stringify([...counts.failuresByKind])}` },
      );
    },
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** A `shipshape serve` (with its workers) on a database and STATE_DIR of its own, and users signed up on it. */
export interface FaultDeployment {
  readonly database: TestDatabase;
  readonly stateDir: string;
  readonly serve: Serve;
  readonly users: User[];
  /** False once serve exited. */
  alive(): boolean;
  /**
   * Kills serve if it still runs, then runs `alsoClose` (the test's proxies and fakes, which
   * serve may hold connections to until then), then drops the database and STATE_DIR.
   */
  close(alsoClose?: () => Promise<unknown>): Promise<void>;
}

/**
 * Starts a deployment for a fault test. `env` gets the fresh database (to put a proxy in front
 * of it, say) and returns what serve needs beyond DATABASE_URL, STATE_DIR and ADMIN_TOKEN; what
 * it returns wins.
 */
export async function startFaultDeployment(
  env: (database: TestDatabase) => Promise<Record<string, string>> | Record<string, string> = () => ({}),
): Promise<FaultDeployment> {
  const [database, state] = await Promise.all([createTestDatabase(), createStateDir()]);
  const serve = await startServeProcess(
    { PORT: '0', TRUST_PROXY: 'true', DATABASE_URL: database.url, STATE_DIR: state.path, ADMIN_TOKEN, ...(await env(database)) },
    ['--migrate'],
  );
  let exited = false;
  serve.child.on('exit', () => (exited = true));
  const users = await registerUsers(serve.url).catch(async (error: unknown) => {
    await serve.stop('SIGKILL');
    throw error;
  });
  return {
    database,
    stateDir: state.path,
    serve,
    users,
    alive: () => !exited,
    async close(alsoClose) {
      if (!exited) await serve.stop('SIGKILL');
      await alsoClose?.();
      await database.drop();
      await state.cleanup();
    },
  };
}

/** How many lines of `output` hold `text`. */
export function occurrences(output: string, text: string): number {
  return output.split('\n').filter((line) => line.includes(text)).length;
}
