/**
 * For scheduler tests: the real server with its workers (as `shipshape serve` runs it), on a
 * fresh PostgreSQL database or an embedded one, and a small admin/user JSON client.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { loadConfig, type Config } from '../../src/config/index.ts';
import type { Queryable } from '../../src/db/pool.ts';
import { createLogger } from '../../src/log.ts';
import { startServer, type RunningServer } from '../../src/runtime/server.ts';
import { ADMIN_TOKEN } from './api.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from './postgres.ts';

import { BUSY_MACHINE_ENV } from './patience.ts';

export { eventually } from './patience.ts';

export interface WorkerApi {
  readonly server: RunningServer;
  readonly config: Config;
  readonly url: string;
  readonly database: TestDatabase | undefined;
  call(method: string, path: string, options?: { body?: unknown; token?: string | null }): Promise<{ status: number; json: Record<string, any> }>;
  close(): Promise<void>;
}

export async function startWorkerApi(options: { embedded?: boolean; env?: Record<string, string>; database?: TestDatabase } = {}): Promise<WorkerApi> {
  const state = await createStateDir();
  const database = options.embedded ? undefined : (options.database ?? (await createTestDatabase()));
  const config = loadConfig({
    PORT: '0',
    STATE_DIR: state.path,
    ADMIN_TOKEN,
    LOG_LEVEL: 'silent',
    ...BUSY_MACHINE_ENV,
    SCHEDULER_POLL_MS: '250',
    ...(database ? { DATABASE_URL: database.url } : {}),
    ...options.env,
  });
  const server = await startServer(config, createLogger('silent'), { migrate: true, workers: true });
  return {
    server,
    config,
    url: server.url,
    database,
    call: async (method, path, { body, token = ADMIN_TOKEN } = {}) => {
      const response = await fetch(`${server.url}${path}`, {
        method,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, json: text ? (JSON.parse(text) as Record<string, any>) : {} };
    },
    close: async () => {
      await server.close();
      if (!options.database) await database?.drop();
      await state.cleanup();
    },
  };
}

/** A user with one registered device; returns the device's push token. */
export async function userWithDevice(url: string): Promise<string> {
  const register = await fetch(`${url}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `user-${randomUUID()}@example.com`, password: 'correct horse battery' }),
  });
  const { token } = (await register.json()) as { token: string };
  const device = `ExponentPushToken[${randomUUID()}]`;
  const response = await fetch(`${url}/me/devices`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ token: device, platform: 'ios' }),
  });
  if (response.status !== 201) throw new Error(`device registration failed: ${response.status}`);
  return device;
}

/** Far enough ahead that no request, however slow the machine, reaches the server after it. */
export const AHEAD_SECONDS = 3_600;

/**
 * Makes scheduled notifications due now, as if the clock had reached their time. Tests schedule
 * them an hour ahead (a request that took longer than "a few seconds ahead" would be refused as
 * in the past) and then call this; returns the new due times.
 */
export async function makeDue(database: Queryable | string, ids: readonly string[]): Promise<Date[]> {
  const sql = 'UPDATE scheduled_notifications SET scheduled_for = now() WHERE id = ANY($1::uuid[]) RETURNING scheduled_for';
  if (typeof database !== 'string') return (await database.query<{ scheduled_for: Date }>(sql, [ids])).rows.map((row) => row.scheduled_for);
  const client = new pg.Client({ connectionString: database });
  await client.connect();
  try {
    return (await client.query<{ scheduled_for: Date }>(sql, [ids])).rows.map((row) => row.scheduled_for);
  } finally {
    await client.end();
  }
}

export const inSeconds = (seconds: number): string => new Date(Date.now() + seconds * 1_000).toISOString();
