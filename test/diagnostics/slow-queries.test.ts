/**
 * `shipshape db slow-queries` on a server with pg_stat_statements loaded (a throwaway
 * cluster started with shared_preload_libraries), on the shared server where it is not,
 * and on the embedded database, where it does not apply.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { isShipError } from '../../src/errors.ts';
import { slowQueries } from '../../src/ops/diagnostics/slow-queries.ts';
import { runCli } from '../helpers/cli.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { clusterUnavailable, startThrowawayCluster, type ThrowawayCluster } from '../helpers/throwaway-cluster.ts';
import { parseJson } from '../helpers/live-operations.ts';

const unavailable = clusterUnavailable();

describe('with pg_stat_statements loaded', { skip: unavailable }, () => {
  let cluster: ThrowawayCluster;
  let url: string;
  let stateDir: { path: string; cleanup(): Promise<void> };

  before(async () => {
    cluster = await startThrowawayCluster({ settings: { shared_preload_libraries: 'pg_stat_statements' } });
    url = await cluster.createDatabase('app');
    stateDir = await createStateDir();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query('CREATE EXTENSION pg_stat_statements');
      await client.query('CREATE TABLE tasks (id serial PRIMARY KEY, owner text, title text)');
      await client.query("INSERT INTO tasks (owner, title) SELECT 'user' || (g % 100), 'task ' || g FROM generate_series(1, 20000) g");
      for (let i = 0; i < 3; i++) await client.query('SELECT count(*) FROM tasks WHERE owner = $1', [`user${i}`]);
      await client.query('SELECT pg_sleep(0.05)');
    } finally {
      await client.end();
    }
  });

  after(async () => {
    await stateDir?.cleanup();
    await cluster?.stop();
  });

  test('lists the statements by mean time with the PostgreSQL 13+ columns, literals masked', async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      // Where the counted statement ranks depends on how busy the machine was when each
      // statement ran, so look for it in the whole list and check the limit separately.
      const top = await slowQueries(client, { limit: 5, databaseName: 'app' });
      assert.ok(top.queries.length > 0 && top.queries.length <= 5, 'at most --limit statements');
      const report = await slowQueries(client, { limit: 100, databaseName: 'app' });
      assert.equal(report.columns.mean, 'mean_exec_time');
      const means = report.queries.map((q) => q.meanMs);
      assert.deepEqual(
        means,
        [...means].sort((a, b) => b - a),
        'ordered by mean time, slowest first',
      );
      const counted = report.queries.find((q) => q.query.includes('FROM tasks WHERE owner'));
      assert.ok(counted, JSON.stringify(report.queries));
      assert.equal(counted.calls, 3);
      assert.ok(
        report.queries.every((q) => !q.query.includes("'user")),
        'no literal values',
      );
    } finally {
      await client.end();
    }
  });

  test('the CLI prints the table, and one JSON document with --json', async () => {
    const env = { DATABASE_URL: url, STATE_DIR: stateDir.path };
    const text = await runCli(['db', 'slow-queries', '--limit', '3'], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /mean_exec_time/);
    assert.match(text.stdout, /mean ms/);
    const json = await runCli(['db', 'slow-queries', '--json'], env);
    assert.equal(json.code, 0, json.stderr);
    const body = parseJson(json.stdout);
    assert.ok(Array.isArray(body.queries));
  });

  test('a database without the extension is told exactly how to create it (exit 3)', async () => {
    const other = await cluster.createDatabase('other');
    const result = await runCli(['db', 'slow-queries'], { DATABASE_URL: other, STATE_DIR: stateDir.path });
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, /pg_stat_statements is not installed in database other/);
    assert.match(result.stderr, /CREATE EXTENSION IF NOT EXISTS pg_stat_statements/);
  });

  test('--limit outside 1-100 is bad input (exit 2)', async () => {
    const result = await runCli(['db', 'slow-queries', '--limit', '0'], { DATABASE_URL: url, STATE_DIR: stateDir.path });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--limit/);
  });
});

describe('without pg_stat_statements loaded', () => {
  let database: TestDatabase;
  before(async () => {
    database = await createTestDatabase('shipshape_live');
  });
  after(async () => {
    await database?.drop();
  });

  test('an installed but not preloaded extension is reported with the restart instructions', async () => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ preload: string }>("SELECT setting AS preload FROM pg_settings WHERE name = 'shared_preload_libraries'");
      if (rows[0]?.preload.includes('pg_stat_statements')) return; // this server has it loaded: nothing to test here
      await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      await assert.rejects(slowQueries(client, { limit: 5, databaseName: database.name }), (error: unknown) => {
        assert.ok(isShipError(error));
        assert.equal(error.code, 'SHIP_ERR_PREREQUISITE_FAILED');
        assert.equal(error.exitCode, 3);
        assert.match(error.message, /not in shared_preload_libraries/);
        assert.match(error.message, /ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'/);
        assert.match(error.message, /Restart PostgreSQL/);
        return true;
      });
    } finally {
      await client.end();
    }
  });

  test('the embedded database says plainly that it does not apply (exit 2)', async () => {
    const state = await createStateDir();
    try {
      const result = await runCli(['db', 'slow-queries'], { STATE_DIR: state.path });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /does not apply to the embedded database/);
    } finally {
      await state.cleanup();
    }
  });
});
