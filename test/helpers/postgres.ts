/**
 * A fresh database per test file on the shared PostgreSQL server (127.0.0.1:5432), or
 * in a throwaway embedded PGlite. Names are random so files run in parallel; `drop`
 * removes the database even when connections are still open.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

export const ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(prefix = 'shipshape_test'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${name}"`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => dropWithCopies(name),
  };
}

/** Drops the database and those a restore kept or left beside it (`<name>__pre_restore_<run>`, `<name>__incoming_<run>`). */
async function dropWithCopies(name: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1::text)', [`${name}__`]);
    for (const database of [...rows.map((row) => row.datname), name]) {
      await closingSessionsGone(client, database);
      await client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    }
  } finally {
    await client.end();
  }
}

/** How long `drop` lets the sessions of connections a test has just closed end by themselves. */
const CLOSING_SESSIONS_GRACE_MS = 10_000;

/**
 * Waits (up to CLOSING_SESSIONS_GRACE_MS) until no session is left on `database`. A pool's
 * `end()` resolves once it has asked its connections to close, before their sessions are gone;
 * FORCE terminates such a session, the closing client emits the FATAL it receives as 'error',
 * and a test's own pool or client seldom listens for one: an uncaught exception that fails the
 * test file after all its tests passed.
 * Sessions still there after the grace (a connection a test really left open) are terminated.
 */
async function closingSessionsGone(client: pg.Client, database: string): Promise<void> {
  const giveUpAt = Date.now() + CLOSING_SESSIONS_GRACE_MS;
  for (;;) {
    const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1::text', [database]);
    if ((rows[0]?.n ?? 0) === 0 || Date.now() > giveUpAt) return;
    await sleep(25);
  }
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A temporary STATE_DIR, removed by `cleanup`. */
export async function createStateDir(): Promise<{ path: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'shipshape-state-'));
  return { path: dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
