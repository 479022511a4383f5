/**
 * `shipshape db diagnose`: sizes, connections per client and application, long-running and
 * idle-in-transaction sessions, who blocks whom, cache hit ratio — with query literals masked.
 * On the embedded database the session sections say they do not apply.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../../src/config/index.ts';
import { openDatabase, type Database } from '../../src/db/index.ts';
import { diagnose } from '../../src/ops/diagnostics/diagnose.ts';
import { listSessions, longTransactions } from '../../src/ops/diagnostics/sessions.ts';
import { runCli } from '../helpers/cli.ts';
import { eventually } from '../helpers/patience.ts';
import { createStateDir } from '../helpers/postgres.ts';
import { liveFixture, logger, parseJson, type LiveFixture } from '../helpers/live-operations.ts';

let fixture: LiveFixture;
let database: Database;

before(async () => {
  fixture = await liveFixture();
  await fixture.pool.query("CREATE TABLE accounts (id int PRIMARY KEY, secret text); INSERT INTO accounts VALUES (1, 'x')");
  const state = await createStateDir();
  fixture.onCleanup(state.cleanup);
  database = await openDatabase(loadConfig({ DATABASE_URL: fixture.database.url, STATE_DIR: state.path, LOG_LEVEL: 'silent' }), logger, 'diagnose-test');
});

after(async () => {
  await database?.close();
  await fixture?.cleanup();
});

async function client(name: string): Promise<{ client: pg.Client; pid: number }> {
  const c = new pg.Client({ connectionString: fixture.database.url, application_name: name });
  c.on('error', () => undefined);
  await c.connect();
  fixture.onCleanup(() => c.end());
  const { rows } = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return { client: c, pid: rows[0]?.pid ?? 0 };
}

describe('db diagnose', () => {
  test('finds the idle-in-transaction holder, the session it blocks and a long statement, literals masked', async () => {
    const holder = await client('holder');
    await holder.client.query('BEGIN');
    await holder.client.query("UPDATE accounts SET secret = 'hunter2' WHERE id = 1");
    const waiter = await client('waiter');
    void waiter.client.query("UPDATE accounts SET secret = 'letmein' WHERE id = 1").catch(() => undefined);
    const sleeper = await client('sleeper');
    void sleeper.client.query('SELECT pg_sleep(30)').catch(() => undefined);
    await eventually(
      'the waiter blocked and the sleeper active',
      async () => {
        const sessions = await listSessions(fixture.pool);
        return sessions.some((s) => s.pid === waiter.pid && s.blockedBy.length > 0) && sessions.some((s) => s.pid === sleeper.pid && s.state === 'active')
          ? true
          : undefined;
      },
      { pollMs: 50 },
    );

    const report = await diagnose(database);
    assert.ok(report.sessions);
    assert.ok(report.database.bytes > 0);
    assert.ok(report.largestTables.length > 0);
    assert.equal(typeof report.cacheHitRatio, 'number');
    assert.ok(report.sessions.idleInTransaction.some((s) => s.pid === holder.pid));
    const blocked = report.sessions.blocking.blocked.find((s) => s.pid === waiter.pid);
    assert.deepEqual(blocked?.blockedBy, [holder.pid]);
    assert.deepEqual(report.sessions.blocking.blockers.find((s) => s.pid === holder.pid)?.blocking, [waiter.pid]);
    assert.ok(report.sessions.longRunning.some((s) => s.pid === sleeper.pid));
    assert.ok(report.sessions.byClient.some((c) => c.applicationName === 'holder' && c.count === 1));
    const text = JSON.stringify(report);
    assert.doesNotMatch(text, /hunter2|letmein/, 'query literals are masked');
    assert.ok(longTransactions(await listSessions(fixture.pool), 0).some((s) => s.pid === holder.pid));

    const cli = await runCli(['db', 'diagnose'], await fixture.cliEnv());
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /Idle in transaction/);
    assert.match(cli.stdout, /Blocking them:/);
    assert.match(cli.stdout, /shipshape db kill <pid>/);
    await holder.client.query('ROLLBACK');
    await fixture.pool.query('SELECT pg_cancel_backend($1::integer)', [sleeper.pid]);
  });

  test('on the embedded database, sizes are shown and the session sections say they do not apply', async () => {
    const state = await createStateDir();
    fixture.onCleanup(state.cleanup);
    const cli = await runCli(['db', 'diagnose', '--json'], { STATE_DIR: state.path });
    assert.equal(cli.code, 0, cli.stderr);
    const report = parseJson(cli.stdout);
    assert.match(JSON.stringify(report.database), /"kind":"embedded"/);
    assert.equal(report.sessions, null);
    const text = await runCli(['db', 'diagnose'], { STATE_DIR: state.path });
    assert.match(text.stdout, /do not apply — the embedded database/);
  });
});
