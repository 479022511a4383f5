/**
 * The built-in smoke suite (runbook: `npm run test:smoke`), run against the running API:
 * the health check answers and the database is up, then a dedicated smoke-test account logs
 * in, creates a task, reads it back and deletes it, and logs out.
 *
 * It runs during the maintenance window, before the app reopens, so every request carries
 * `X-Maintenance-Bypass` with an admin token: only admin-token holders get past the gate.
 * The smoke account's password is set fresh for each run (and never stored), so no credential
 * for it exists between runs.
 */
import { randomBytes } from 'node:crypto';
import type { Queryable } from '../../db/pool.ts';
import { describeError } from '../../errors.ts';
import { createUser, findUserByEmail, setPassword } from '../../domain/users.ts';

export interface SmokeCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
  readonly durationMs: number;
}

export interface SmokeOptions {
  readonly apiUrl: string;
  readonly email: string;
  readonly password: string;
  /** Sent as X-Maintenance-Bypass, so the suite runs while maintenance mode is on. */
  readonly bypassToken?: string | undefined;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal | undefined;
}

/** Makes sure the smoke account exists and gives it a new random password, returned once. */
export async function prepareSmokeAccount(db: Queryable, email: string): Promise<{ password: string; created: boolean }> {
  const password = randomBytes(24).toString('base64url');
  const existing = await findUserByEmail(db, email);
  if (existing) {
    await setPassword(db, existing.id, password);
    return { password, created: false };
  }
  await createUser(db, { email, password, displayName: 'Shipshape smoke test' });
  return { password, created: true };
}

/** Runs every check in order; a failed one stops the rest (they depend on it). */
export async function runSmokeTests(options: SmokeOptions): Promise<SmokeCheck[]> {
  const base = options.apiUrl.replace(/\/+$/, '');
  const checks: SmokeCheck[] = [];
  const call = async (method: string, path: string, init: { token?: string; body?: unknown } = {}) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        ...(options.bypassToken ? { 'x-maintenance-bypass': options.bypassToken } : {}),
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? 10_000), ...(options.signal ? [options.signal] : [])]),
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, json };
  };
  const check = async (name: string, fn: () => Promise<string>): Promise<boolean> => {
    const started = performance.now();
    try {
      const detail = await fn();
      checks.push({ name, ok: true, detail, durationMs: Math.round(performance.now() - started) });
      return true;
    } catch (error) {
      checks.push({ name, ok: false, detail: describeError(error), durationMs: Math.round(performance.now() - started) });
      return false;
    }
  };

  let token = '';
  let taskId = '';
  const steps: Array<[string, () => Promise<string>]> = [
    [
      'health check',
      async () => {
        const { status, json } = await call('GET', '/health');
        const body = record(json);
        // During the window /health says "maintenance" (503) on purpose; the database must answer all the same.
        if (status === 200 && body.status === 'ok') return 'GET /health → 200, database ok';
        if (status === 503 && body.status === 'maintenance' && body.db === 'ok')
          return 'GET /health → 503 maintenance (expected during the window), database ok';
        throw new Error(`GET /health → ${status} ${JSON.stringify(json ?? null).slice(0, 200)}`);
      },
    ],
    [
      'smoke account logs in',
      async () => {
        const { status, json } = await call('POST', '/auth/login', { body: { email: options.email, password: options.password } });
        const body = record(json);
        if (status !== 200 || typeof body.token !== 'string') throw new Error(`POST /auth/login → ${status} ${errorText(json)}`);
        token = body.token;
        return `POST /auth/login → 200 as ${options.email}`;
      },
    ],
    [
      'creates a task',
      async () => {
        const { status, json } = await call('POST', '/tasks', { token, body: { title: `smoke test ${new Date().toISOString()}` } });
        const body = record(json);
        if (status !== 201 || typeof body.id !== 'string') throw new Error(`POST /tasks → ${status} ${errorText(json)}`);
        taskId = body.id;
        return `POST /tasks → 201 (${taskId})`;
      },
    ],
    [
      'reads it back',
      async () => {
        const { status, json } = await call('GET', `/tasks/${taskId}`, { token });
        if (status !== 200 || record(json).id !== taskId) throw new Error(`GET /tasks/${taskId} → ${status} ${errorText(json)}`);
        return `GET /tasks/${taskId} → 200`;
      },
    ],
    [
      'deletes it',
      async () => {
        const { status, json } = await call('DELETE', `/tasks/${taskId}`, { token });
        if (status !== 204) throw new Error(`DELETE /tasks/${taskId} → ${status} ${errorText(json)}`);
        return `DELETE /tasks/${taskId} → 204`;
      },
    ],
    [
      'logs out',
      async () => {
        const { status, json } = await call('POST', '/auth/logout', { token });
        if (status >= 300) throw new Error(`POST /auth/logout → ${status} ${errorText(json)}`);
        return `POST /auth/logout → ${status}`;
      },
    ],
  ];
  for (const [name, fn] of steps) {
    if (!(await check(name, fn))) break;
  }
  return checks;
}

export function smokeSummary(checks: readonly SmokeCheck[]): string {
  return checks.map((check) => `${check.ok ? '✓' : '✗'} ${check.name}: ${check.detail}`).join('; ');
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function errorText(json: unknown): string {
  const error = record(record(json).error);
  return typeof error.message === 'string' ? `(${String(error.code ?? '')}: ${error.message.slice(0, 200)})` : '';
}
