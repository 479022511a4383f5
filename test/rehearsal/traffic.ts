/**
 * The rehearsal's traffic: a few app users, each in its own loop, alternating between the two
 * instances — log in, create, update, delete and list tasks, set preferences, register devices.
 * Each request says which app it comes from, as the app does: `X-App-Version` (the store build)
 * and, once it runs an OTA update, `x-update-id` — what the release and update gates count.
 * Every response is logged with the phase (procedure) it started in, and every write answered
 * with a 2xx is recorded in the ledger, which later checks the database still holds it. A write
 * whose answer was lost (an error, a 5xx) is "uncertain": either outcome is allowed.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { Instance } from './deployment.ts';
import { call } from '../helpers/http-call.ts';

export interface LoggedResponse {
  readonly at: number;
  readonly phase: string;
  readonly instance: string;
  readonly what: string;
  /** 0 when no HTTP answer came (connection refused or reset). */
  readonly status: number;
  readonly code: string | undefined;
  /** Whether this was a write (anything but GET). */
  readonly write: boolean;
}

interface TaskRecord {
  title: string;
  done: boolean;
  /** Deleted with a 2xx. */
  deleted: boolean;
  /** The last write's answer was lost: either outcome is allowed for this task. */
  uncertain: boolean;
  /** What was acknowledged, newest last (for the report when something is missing). */
  history?: string[];
}

interface UserRecord {
  readonly email: string;
  readonly password: string;
  id: string;
  token: string | undefined;
  readonly tasks: Map<string, TaskRecord>;
  theme: string | undefined;
  themeUncertain: boolean;
  readonly devices: Set<string>;
  /** Writes of this user are no longer checked (erased on purpose, or lost to a restore by design). */
  excluded: boolean;
}

/** What the database must still hold: every acknowledged write, as one snapshot that can be put back after a restore. */
export class Ledger {
  readonly users: UserRecord[] = [];
  acknowledged = 0;
  /** When each thing was last written (acknowledged or not): a restore makes writes made while its backup ran uncertain. */
  readonly writes: Array<{ at: number; email: string; key: string }> = [];

  wrote(user: UserRecord, key: string): void {
    this.writes.push({ at: Date.now(), email: user.email, key });
  }

  /** Everything written between `from` and `to` may or may not be in a backup taken then: either is allowed. */
  uncertainBetween(from: number, to: number): void {
    for (const write of this.writes) {
      if (write.at < from || write.at > to) continue;
      const user = this.users.find((candidate) => candidate.email === write.email);
      if (!user) continue;
      if (write.key === 'theme') user.themeUncertain = true;
      else if (write.key.startsWith('task:')) {
        const task = user.tasks.get(write.key.slice('task:'.length));
        if (task) task.uncertain = true;
      } else if (write.key.startsWith('device:')) user.devices.delete(write.key.slice('device:'.length));
    }
  }

  snapshot(): string {
    return JSON.stringify(this.users.map((user) => ({ ...user, tasks: [...user.tasks], devices: [...user.devices] })));
  }

  /** Puts the expectations back as they were at `snapshot()` (after a restore to that moment). */
  restore(snapshot: string): void {
    const saved = JSON.parse(snapshot) as Array<UserRecord & { tasks: Array<[string, TaskRecord]>; devices: string[] }>;
    for (const user of this.users) {
      const before = saved.find((candidate) => candidate.email === user.email);
      if (!before) {
        user.excluded = true;
        continue;
      }
      user.tasks.clear();
      for (const [id, task] of before.tasks) user.tasks.set(id, task);
      user.theme = before.theme;
      user.themeUncertain = before.themeUncertain;
      user.devices.clear();
      for (const device of before.devices) user.devices.add(device);
    }
  }

  /** Every acknowledged write missing from the database, one line each (empty when all are there). */
  async missing(pool: pg.Pool): Promise<{ checked: number; missing: string[] }> {
    const users = this.users.filter((user) => !user.excluded);
    const ids = users.map((user) => user.id);
    const [tasks, prefs, devices, accounts] = await Promise.all([
      pool.query<{ id: string; title: string; done: boolean }>('SELECT id::text, title, done FROM tasks WHERE user_id = ANY($1::uuid[])', [ids]),
      pool.query<{ user_id: string; theme: string }>('SELECT user_id::text, theme FROM user_preferences WHERE user_id = ANY($1::uuid[])', [ids]),
      pool.query<{ token: string }>('SELECT token FROM devices WHERE user_id = ANY($1::uuid[])', [ids]),
      pool.query<{ id: string }>('SELECT id::text FROM users WHERE id = ANY($1::uuid[])', [ids]),
    ]);
    const taskRows = new Map(tasks.rows.map((row) => [row.id, row]));
    const themes = new Map(prefs.rows.map((row) => [row.user_id, row.theme]));
    const deviceRows = new Set(devices.rows.map((row) => row.token));
    const accountRows = new Set(accounts.rows.map((row) => row.id));
    const missing: string[] = [];
    let checked = 0;
    for (const user of users) {
      checked += 1;
      if (!accountRows.has(user.id)) missing.push(`account ${user.email} (registered with 201) is gone`);
      for (const [id, task] of user.tasks) {
        if (task.uncertain) continue;
        checked += 1;
        const row = taskRows.get(id);
        if (task.deleted) {
          if (row) missing.push(`task ${id} of ${user.email} was deleted (204) but is back`);
        } else if (!row) missing.push(`task ${id} of ${user.email} (acknowledged) is missing`);
        else if (row.title !== task.title || row.done !== task.done)
          missing.push(
            `task ${id} of ${user.email}: acknowledged ${JSON.stringify({ title: task.title, done: task.done })}, found ${JSON.stringify({ title: row.title, done: row.done })}; history ${JSON.stringify(task.history?.slice(-4))}`,
          );
      }
      if (user.theme !== undefined && !user.themeUncertain) {
        checked += 1;
        if (themes.get(user.id) !== user.theme)
          missing.push(`preferences of ${user.email}: acknowledged theme ${user.theme}, found ${themes.get(user.id) ?? 'none'}`);
      }
      for (const device of user.devices) {
        checked += 1;
        if (!deviceRows.has(device)) missing.push(`device ${device} of ${user.email} (registered with 201) is missing`);
      }
    }
    return { checked, missing };
  }
}

interface Reply {
  readonly status: number;
  readonly code: string | undefined;
  // The API's JSON answers are read freely here; each use names the field it needs.
  readonly json: Record<string, any>;
}

const THEMES = ['light', 'dark', 'system'] as const;

export interface TrafficOptions {
  readonly users: number;
  /** Pause between one user's rounds: how light the traffic is. */
  readonly pauseMs: number;
}

/** The headers the app of user `index` (0-based) sends with every request. */
export type AppHeaders = (index: number) => Readonly<Record<string, string>>;

export class Traffic {
  readonly log: LoggedResponse[] = [];
  readonly ledger = new Ledger();
  /** The phase a request is attributed to: the one running when it started. */
  phase = 'warm-up';
  #running = false;
  #loops: Promise<void>[] = [];
  /** Set while the traffic is held (see `whilePaused`); loops wait at the start of a round. */
  #paused: { release: Promise<void>; idle: Set<number> } | undefined;
  readonly #instances: readonly Instance[];
  readonly #lastLogin = new Map<string, number>();
  readonly #options: TrafficOptions;
  /** Which app each user runs; a release or update procedure moves some users to the new one. */
  appHeaders: AppHeaders;

  constructor(instances: readonly Instance[], options: TrafficOptions & { appHeaders: AppHeaders }) {
    this.#instances = instances;
    this.#options = options;
    this.appHeaders = options.appHeaders;
  }

  async #call(
    instance: Instance,
    method: string,
    path: string,
    what: string,
    options: { body?: unknown; token?: string | undefined; headers?: Readonly<Record<string, string>> } = {},
  ): Promise<Reply> {
    const phase = this.phase;
    let reply: Reply;
    try {
      const answer = await call(instance.url, method, path, options);
      const json = answer.json;
      reply = { status: answer.status, code: typeof json.error?.code === 'string' ? json.error.code : undefined, json };
    } catch (error) {
      reply = { status: 0, code: `network: ${(error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message}`, json: {} };
    }
    this.log.push({ at: Date.now(), phase, instance: instance.name, what, status: reply.status, code: reply.code, write: method !== 'GET' });
    if (reply.status >= 200 && reply.status < 300 && method !== 'GET') this.ledger.acknowledged += 1;
    return reply;
  }

  /** Registers the users through the first instance and logs each in on the second. */
  async start(): Promise<void> {
    for (let i = 0; i < this.#options.users; i++) {
      const user: UserRecord = {
        email: `rehearsal-${i}-${randomUUID()}@example.com`,
        password: 'correct horse battery staple',
        id: '',
        token: undefined,
        tasks: new Map(),
        theme: undefined,
        themeUncertain: false,
        devices: new Set(),
        excluded: false,
      };
      const registered = await this.#call(this.#instances[0]!, 'POST', '/auth/register', 'register', { body: { email: user.email, password: user.password } });
      if (registered.status !== 201) throw new Error(`registration failed: ${registered.status} ${registered.code}`);
      user.id = String(registered.json.user.id);
      this.ledger.users.push(user);
      await this.#login(user, this.#instances[1]!);
    }
    this.#running = true;
    this.#loops = this.ledger.users.map((user, i) => this.#loop(user, i));
  }

  async #login(user: UserRecord, instance: Instance): Promise<boolean> {
    const reply = await this.#call(instance, 'POST', '/auth/login', 'login', { body: { email: user.email, password: user.password } });
    if (reply.status === 200) user.token = String(reply.json.token);
    return reply.status === 200;
  }

  async #loop(user: UserRecord, offset: number): Promise<void> {
    let round = 0;
    while (this.#running) {
      const paused = this.#paused;
      if (paused) {
        paused.idle.add(offset);
        await paused.release;
        continue;
      }
      const instance = this.#instances[(round + offset) % this.#instances.length]!;
      round += 1;
      try {
        await this.#round(user, instance, round, this.appHeaders(offset));
      } catch (error) {
        this.log.push({
          at: Date.now(),
          phase: this.phase,
          instance: instance.name,
          what: 'traffic',
          status: -1,
          code: `traffic loop error: ${(error as Error).message}`,
          write: false,
        });
      }
      await sleep(this.#options.pauseMs);
    }
  }

  async #round(user: UserRecord, instance: Instance, round: number, headers: Readonly<Record<string, string>>): Promise<void> {
    if (user.excluded) return;
    if (!user.token) {
      // Sessions end only when a procedure ends them (a restore to before the login, say). Logins
      // are rate-limited per address (all of the traffic comes from 127.0.0.1), so a user whose
      // session ended tries again at most every 5 s.
      if (Date.now() - (this.#lastLogin.get(user.email) ?? 0) < 5_000) return;
      this.#lastLogin.set(user.email, Date.now());
      if (!(await this.#login(user, instance))) return;
    }
    const token = user.token;
    const unauthorised = (reply: Reply) => {
      if (reply.status === 401) user.token = undefined;
      return reply.status === 401;
    };
    const answered = (reply: Reply) => reply.status >= 200 && reply.status < 300;
    const lost = (reply: Reply) => reply.status === 0 || reply.status >= 500;

    const title = `task ${round} ${randomUUID().slice(0, 8)}`;
    const created = await this.#call(instance, 'POST', '/tasks', 'create task', { body: { title }, token, headers });
    if (unauthorised(created)) return;
    if (answered(created)) {
      user.tasks.set(String(created.json.id), {
        title,
        done: false,
        deleted: false,
        uncertain: false,
        history: [`${new Date().toISOString()} POST ${instance.name} ${created.status}`],
      });
      this.ledger.wrote(user, `task:${String(created.json.id)}`);
    }

    const open = [...user.tasks.entries()].filter(([, task]) => !task.deleted);
    const target = open[round % Math.max(open.length, 1)];
    if (target) {
      const [id, task] = target;
      const newTitle = `${task.title} (edited)`.slice(0, 200);
      this.ledger.wrote(user, `task:${id}`);
      const updated = await this.#call(instance, 'PATCH', `/tasks/${id}`, 'update task', { body: { done: !task.done, title: newTitle }, token, headers });
      this.ledger.wrote(user, `task:${id}`);
      if (unauthorised(updated)) return;
      if (answered(updated)) {
        Object.assign(task, { done: !task.done, title: newTitle, uncertain: false });
        task.history = [
          ...(task.history ?? []),
          `${new Date().toISOString()} PATCH ${instance.name} ${updated.status} ${JSON.stringify({ title: updated.json.title, done: updated.json.done })}`,
        ];
      } else if (lost(updated)) task.uncertain = true;
    }
    if (round % 3 === 0 && open.length > 2) {
      const [id, task] = open[0]!;
      this.ledger.wrote(user, `task:${id}`);
      const deleted = await this.#call(instance, 'DELETE', `/tasks/${id}`, 'delete task', { token, headers });
      this.ledger.wrote(user, `task:${id}`);
      if (unauthorised(deleted)) return;
      if (answered(deleted)) Object.assign(task, { deleted: true, uncertain: false });
      else if (lost(deleted)) task.uncertain = true;
    }
    const theme = THEMES[round % THEMES.length]!;
    this.ledger.wrote(user, 'theme');
    const prefs = await this.#call(instance, 'PUT', '/me/preferences', 'set preferences', { body: { theme }, token, headers });
    this.ledger.wrote(user, 'theme');
    if (unauthorised(prefs)) return;
    if (answered(prefs)) Object.assign(user, { theme, themeUncertain: false });
    else if (lost(prefs)) user.themeUncertain = true;
    if (round % 5 === 1) {
      const device = `ExponentPushToken[${randomUUID()}]`;
      const registered = await this.#call(instance, 'POST', '/me/devices', 'register device', {
        body: { token: device, platform: round % 2 ? 'ios' : 'android' },
        token,
        headers,
      });
      if (unauthorised(registered)) return;
      if (answered(registered)) {
        user.devices.add(device);
        this.ledger.wrote(user, `device:${device}`);
      }
    }
    unauthorised(await this.#call(instance, 'GET', '/tasks', 'list tasks', { token, headers }));
  }

  /**
   * Runs `fn` with no request in flight: every loop finishes its round and waits. A check of the
   * database against the ledger needs that moment, or a write the server committed but whose
   * answer is still on its way looks lost.
   */
  async whilePaused<T>(fn: () => Promise<T>): Promise<T> {
    let release!: () => void;
    const paused = { release: new Promise<void>((resolve) => (release = resolve)), idle: new Set<number>() };
    this.#paused = paused;
    try {
      while (this.#running && paused.idle.size < this.#loops.length) await sleep(10);
      return await fn();
    } finally {
      this.#paused = undefined;
      release();
    }
  }

  /** Waits until every user has made a round after now on both instances (a write acknowledged by each). */
  writesSince(since: number): Set<string> {
    return new Set(this.log.filter((entry) => entry.at > since && entry.write && entry.status >= 200 && entry.status < 300).map((entry) => entry.instance));
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }
}
