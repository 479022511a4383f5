/**
 * `shipshape db index <table> <columns…>`: CREATE INDEX CONCURRENTLY with a generated,
 * quoted name, verified valid; names that are not plain identifiers, unknown tables and
 * columns, and indexes that already exist are refused; a build that fails leaves no
 * invalid index behind. Index advice finds big sequentially-scanned tables and unused indexes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { loadConfig } from '../../src/config/index.ts';
import { openDatabase } from '../../src/db/index.ts';
import { indexAdvice } from '../../src/ops/diagnostics/indexes.ts';
import { runProcedure } from '../../src/ops/engine/index.ts';
import { dbIndex } from '../../src/ops/procedures/db-index.ts';
import { eventually } from '../helpers/patience.ts';
import { createStateDir } from '../helpers/postgres.ts';
import { liveFixture, logger, show, type LiveFixture } from '../helpers/live-operations.ts';

let fixture: LiveFixture;

before(async () => {
  fixture = await liveFixture();
  await fixture.pool.query('CREATE TABLE events (id serial PRIMARY KEY, "userId" text, kind text, at timestamptz DEFAULT now())');
  await fixture.pool.query("INSERT INTO events (\"userId\", kind) SELECT 'u' || (g % 500), 'k' || (g % 7) FROM generate_series(1, 20000) g");
  await fixture.pool.query('ANALYZE events');
});

after(async () => {
  await fixture?.cleanup();
});

async function indexes(table: string): Promise<Array<{ name: string; valid: boolean }>> {
  const { rows } = await fixture.pool.query<{ name: string; valid: boolean }>(
    'SELECT i.relname AS name, x.indisvalid AS valid FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid WHERE t.relname = $1::text AND NOT x.indisprimary ORDER BY 1',
    [table],
  );
  return rows;
}

describe('db index', () => {
  test('builds the index concurrently under the runbook-style name and verifies it', async () => {
    const report = await runProcedure(dbIndex, { table: 'events', columns: ['userId', 'at'] }, { yes: true }, await fixture.deps());
    assert.equal(report.exitCode, 0, show(report));
    assert.deepEqual(await indexes('events'), [{ name: 'idx_events_userid_at', valid: true }]);
    assert.match(report.verification[0]?.detail ?? '', /CREATE INDEX idx_events_userid_at ON public.events USING btree \("userId", at\)/);

    const again = await runProcedure(dbIndex, { table: 'public.events', columns: ['userId'] }, { yes: true }, await fixture.deps());
    assert.equal(again.exitCode, 3, 'an index starting with those columns already serves them');
    assert.match(JSON.stringify(again.prerequisites), /idx_events_userid_at already starts with/);
  });

  test('the dry run shows the exact, quoted statement and changes nothing', async () => {
    const report = await runProcedure(dbIndex, { table: 'events', columns: ['kind'] }, { dryRun: true }, await fixture.deps());
    assert.equal(report.exitCode, 0, show(report));
    assert.match(JSON.stringify(report.steps), /CREATE INDEX CONCURRENTLY \\"idx_events_kind\\" ON \\"public\\".\\"events\\" \(\\"kind\\"\)/);
    assert.equal(
      (await indexes('events')).some((index) => index.name === 'idx_events_kind'),
      false,
    );
  });

  test('names that are not plain identifiers are bad input (exit 2); unknown tables and columns are prerequisites (exit 3)', async () => {
    const deps = await fixture.deps();
    for (const input of [
      { table: 'events; DROP TABLE events', columns: ['kind'] },
      { table: 'events', columns: ['kind) WHERE (true'] },
      { table: 'events', columns: [] },
      { table: 'events', columns: ['kind', 'kind'] },
    ]) {
      const report = await runProcedure(dbIndex, input, { yes: true }, deps);
      assert.equal(report.exitCode, 2, `${JSON.stringify(input)}: ${show(report)}`);
    }
    const table = await runProcedure(dbIndex, { table: 'nowhere', columns: ['id'] }, { yes: true }, deps);
    assert.equal(table.exitCode, 3);
    assert.match(JSON.stringify(table.prerequisites), /no table public.nowhere/);
    const column = await runProcedure(dbIndex, { table: 'events', columns: ['userid'] }, { yes: true }, deps);
    assert.equal(column.exitCode, 3, 'column names are case-sensitive');
    assert.match(JSON.stringify(column.prerequisites), /has no column userid/);
    assert.equal((await fixture.pool.query('SELECT count(*)::int AS n FROM events')).rows[0]?.n, 20000);
  });

  test('a build that fails drops the invalid index it left behind', async () => {
    // A transaction that wrote to the table keeps CREATE INDEX CONCURRENTLY waiting after it
    // has created its (not yet valid) index; Ctrl-C then cancels it on the server.
    const writer = new pg.Client({ connectionString: fixture.database.url });
    await writer.connect();
    fixture.onCleanup(() => writer.end());
    await writer.query('BEGIN');
    await writer.query("INSERT INTO events (\"userId\", kind) VALUES ('w', 'w')");
    const interrupt = new AbortController();
    const running = runProcedure(dbIndex, { table: 'events', columns: ['kind', 'at'] }, { yes: true }, { ...(await fixture.deps()), signal: interrupt.signal });
    await eventually(
      'CREATE INDEX CONCURRENTLY waiting for the open transaction',
      async () => {
        const { rows } = await fixture.pool.query("SELECT 1 FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'");
        return rows.length > 0 ? true : undefined;
      },
      { pollMs: 50 },
    );
    assert.ok(
      (await indexes('events')).some((index) => index.name === 'idx_events_kind_at' && !index.valid),
      'the build left an invalid index while waiting',
    );
    interrupt.abort(new Error('interrupted by SIGINT'));
    await sleep(300);
    await writer.query('ROLLBACK'); // lets the DROP INDEX CONCURRENTLY of the cleanup through
    const report = await running;
    assert.notEqual(report.exitCode, 0, show(report));
    assert.match(report.error?.message ?? '', /the invalid index it left was dropped/);
    assert.equal(
      (await indexes('events')).some((index) => index.name === 'idx_events_kind_at'),
      false,
    );
  });

  test('index advice lists a large table read by sequential scans and an index never used', async () => {
    await fixture.pool.query('CREATE TABLE big (id int, payload text)');
    await fixture.pool.query("INSERT INTO big SELECT g, 'p' || g FROM generate_series(1, 15000) g");
    await fixture.pool.query('CREATE INDEX big_payload_unused ON big (payload)');
    await fixture.pool.query('ANALYZE big');
    for (let i = 0; i < 3; i++) await fixture.pool.query('SELECT count(*) FROM big WHERE id % 7 = $1::int', [i]);
    const client = await fixture.pool.connect();
    try {
      await client.query('SELECT pg_stat_force_next_flush()');
      await client.query('SELECT 1');
    } finally {
      client.release();
    }
    // Statistics reach pg_stat_user_tables asynchronously.
    const advice = await eventually('the statistics of table big', async () => {
      const now = await indexAdvice(fixture.pool);
      return now.likelyMissing.some((m) => m.table === 'public.big') ? now : undefined;
    });
    const big = advice.likelyMissing.find((m) => m.table === 'public.big');
    assert.ok(big, JSON.stringify(advice));
    assert.ok(big.seqScans >= 3 && big.rowsPerSeqScan >= 1000);
    assert.ok(
      advice.unused.some((u) => u.index === 'public.big_payload_unused'),
      JSON.stringify(advice.unused),
    );
    assert.ok(!advice.unused.some((u) => u.index.endsWith('_pkey')), 'primary keys are never suggested for removal');
  });

  test('works on the embedded database', async () => {
    const state = await createStateDir();
    fixture.onCleanup(state.cleanup);
    const config = loadConfig({ STATE_DIR: state.path, LOG_LEVEL: 'silent', SHIPSHAPE_OPERATOR: 'alice' });
    const database = await openDatabase(config, logger, 'test');
    try {
      await database.pool.query('CREATE TABLE notes (id serial PRIMARY KEY, owner text)');
    } finally {
      await database.close();
    }
    const report = await runProcedure(dbIndex, { table: 'notes', columns: ['owner'] }, { yes: true }, { config, logger });
    assert.equal(report.exitCode, 0, show(report));
    assert.match(report.verification[0]?.detail ?? '', /idx_notes_owner/);
  });
});
