/**
 * `shipshape db kill <pid>`: a running statement is cancelled and its session kept; a
 * session idle in a transaction needs --force and is then terminated; pids that are not
 * client sessions of the application database, or that are ours, are refused; bad input and
 * the embedded database are refused plainly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../../src/config/index.ts';
import { runProcedure } from '../../src/ops/engine/index.ts';
import { dbKill } from '../../src/ops/procedures/db-kill.ts';
import { eventually } from '../helpers/patience.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { liveFixture, logger, show, type LiveFixture } from '../helpers/live-operations.ts';

let fixture: LiveFixture;
let otherDatabase: TestDatabase;
const confirmed = { yes: true, yesIrreversible: true };

before(async () => {
  fixture = await liveFixture();
  otherDatabase = await createTestDatabase('shipshape_other');
});

after(async () => {
  await fixture?.cleanup();
  await otherDatabase?.drop();
});

async function session(url = fixture.database.url): Promise<{ client: pg.Client; pid: number }> {
  const client = new pg.Client({ connectionString: url, application_name: 'victim' });
  client.on('error', () => undefined);
  await client.connect();
  fixture.onCleanup(() => client.end());
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return { client, pid: rows[0]?.pid ?? 0 };
}

async function stateOf(pid: number): Promise<string | null | undefined> {
  const { rows } = await fixture.pool.query<{ state: string | null }>('SELECT state FROM pg_stat_activity WHERE pid = $1::integer', [pid]);
  return rows[0] === undefined ? undefined : rows[0].state;
}

async function until(check: () => Promise<boolean>): Promise<void> {
  await eventually('the session reaching the state the test needs', async () => ((await check()) ? true : undefined), { pollMs: 50 });
}

describe('db kill', () => {
  test('cancels a running statement and keeps the session connected', async () => {
    const { client, pid } = await session();
    const running = client.query('SELECT pg_sleep(60)').then(
      () => 'finished',
      (error: Error & { code?: string }) => error.code,
    );
    await until(async () => (await stateOf(pid)) === 'active');
    const report = await runProcedure(dbKill, { pid: String(pid) }, confirmed, await fixture.deps());
    assert.equal(report.exitCode, 0, show(report));
    assert.equal(await running, '57014', 'the statement was cancelled');
    assert.equal((await client.query('SELECT 1 AS one')).rows[0]?.one, 1, 'the session is still usable');
    assert.equal(report.steps.find((s) => s.id === 'terminate')?.output?.terminated, false);
  });

  test('a session idle in a transaction needs --force, and is then terminated', async () => {
    const { client, pid } = await session();
    await client.query('BEGIN');
    await client.query('SELECT 1');
    const refused = await runProcedure(dbKill, { pid: String(pid) }, confirmed, await fixture.deps());
    assert.equal(refused.exitCode, 3, show(refused));
    assert.match(JSON.stringify(refused.prerequisites), /idle in transaction/);
    assert.match(JSON.stringify(refused.prerequisites), /--force/);
    assert.equal(await stateOf(pid), 'idle in transaction', 'nothing was done');

    const forced = await runProcedure(dbKill, { pid: String(pid), force: true }, confirmed, await fixture.deps());
    assert.equal(forced.exitCode, 0, show(forced));
    await until(async () => (await stateOf(pid)) === undefined);
    assert.equal(await stateOf(pid), undefined, 'the session is gone');
  });

  test('refuses a session of another database, a server process and an unknown pid', async () => {
    const other = await session(otherDatabase.url);
    const foreign = await runProcedure(dbKill, { pid: String(other.pid), force: true }, confirmed, await fixture.deps());
    assert.equal(foreign.exitCode, 3);
    assert.match(JSON.stringify(foreign.prerequisites), new RegExp(`connected to database ${otherDatabase.name}`));

    const { rows } = await fixture.pool.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend' AND pid IS NOT NULL LIMIT 1",
    );
    const serverPid = rows[0]?.pid;
    assert.ok(serverPid !== undefined);
    const server = await runProcedure(dbKill, { pid: String(serverPid), force: true }, confirmed, await fixture.deps());
    assert.equal(server.exitCode, 3);
    assert.match(JSON.stringify(server.prerequisites), /not a client session/);

    const unknown = await runProcedure(dbKill, { pid: '2147483000', force: true }, confirmed, await fixture.deps());
    assert.equal(unknown.exitCode, 3);
    assert.match(JSON.stringify(unknown.prerequisites), /no server process has pid/);
    assert.equal((await fixture.pool.query('SELECT 1 AS one')).rows[0]?.one, 1);
  });

  test('refuses the lock connection of a Shipshape run', async () => {
    const client = new pg.Client({ connectionString: fixture.database.url, application_name: 'shipshape-run r-20250101-000000-abcd bob' });
    await client.connect();
    fixture.onCleanup(() => client.end());
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const report = await runProcedure(dbKill, { pid: String(rows[0]?.pid), force: true }, confirmed, await fixture.deps());
    assert.equal(report.exitCode, 3, show(report));
    assert.match(JSON.stringify(report.prerequisites), /holds the lock of Shipshape run r-20250101-000000-abcd/);
  });

  test('bad input and missing confirmations are refused before anything happens', async () => {
    const deps = await fixture.deps();
    for (const pid of ['abc', '-5', '1.5', '']) {
      const report = await runProcedure(dbKill, { pid }, confirmed, deps);
      assert.equal(report.exitCode, 2, `${pid}: ${show(report)}`);
      assert.match(report.error?.message ?? '', /pid/);
    }
    const { pid } = await session();
    const unconfirmed = await runProcedure(dbKill, { pid: String(pid), force: true }, { yes: true }, deps);
    assert.equal(unconfirmed.exitCode, 2, 'the irreversible steps need their own confirmation');
    assert.equal(await stateOf(pid), 'idle');
  });

  test('the embedded database says plainly that it does not apply (exit 2)', async () => {
    const state = await createStateDir();
    try {
      const config = loadConfig({ STATE_DIR: state.path, LOG_LEVEL: 'silent', SHIPSHAPE_OPERATOR: 'alice' });
      const report = await runProcedure(dbKill, { pid: '42', force: true }, confirmed, { config, logger });
      assert.equal(report.exitCode, 2, show(report));
      assert.equal(report.error?.code, 'SHIP_ERR_NOT_SUPPORTED_EMBEDDED');
      assert.match(report.error?.message ?? '', /single backend/);
    } finally {
      await state.cleanup();
    }
  });
});
