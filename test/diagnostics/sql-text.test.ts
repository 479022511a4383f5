/**
 * The lexical checks behind `db explain`, the masking of query texts, index names and
 * table names, and the pg_stat_statements column names per server version.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inBatches } from '../../src/adapters/cloudflare.ts';
import { sentryStatsUrl } from '../../src/adapters/sentry.ts';
import { isShipError } from '../../src/errors.ts';
import { checkExplainable } from '../../src/ops/diagnostics/explain.ts';
import { indexNameFor, parseTableName } from '../../src/ops/diagnostics/indexes.ts';
import { enableInstructions, statementColumns } from '../../src/ops/diagnostics/slow-queries.ts';
import { maskLiterals, mayWrite, splitStatements } from '../../src/ops/diagnostics/sql-text.ts';

describe('SQL text', () => {
  test('semicolons inside strings, identifiers, dollar quotes and comments do not split statements', () => {
    assert.deepEqual(splitStatements('SELECT \'a;b\', "c;d", $x$e;f$x$ -- g;h\n /* i; /* j; */ k; */ FROM t;'), [
      'SELECT \'a;b\', "c;d", $x$e;f$x$ -- g;h\n /* i; /* j; */ k; */ FROM t',
    ]);
    assert.deepEqual(splitStatements('SELECT 1; ; SELECT 2;'), ['SELECT 1', 'SELECT 2']);
    assert.deepEqual(splitStatements("SELECT E'it\\'s; fine'"), ["SELECT E'it\\'s; fine'"]);
  });

  test('a statement that names a write anywhere outside strings may write', () => {
    assert.equal(mayWrite('SELECT * FROM tasks'), false);
    assert.equal(mayWrite("SELECT 'delete me' FROM tasks -- update later"), false);
    assert.equal(mayWrite('WITH gone AS (DELETE FROM tasks RETURNING id) SELECT count(*) FROM gone'), true);
    assert.equal(mayWrite('SELECT * FROM tasks FOR UPDATE'), true);
    assert.equal(mayWrite('UPDATE tasks SET done = true'), true);
  });

  test('literals are masked so values never reach a report', () => {
    assert.equal(maskLiterals("SELECT * FROM users WHERE email = 'a@b.c' AND token = $t$secret$t$"), "SELECT * FROM users WHERE email = '…' AND token = '…'");
    assert.equal(maskLiterals("ALTER ROLE app PASSWORD 'hunter2'"), "ALTER ROLE app PASSWORD '…'");
  });
});

describe('db explain input', () => {
  const refused = (sql: string, pattern: RegExp) => {
    assert.throws(
      () => checkExplainable(sql),
      (error: unknown) => isShipError(error) && error.code === 'SHIP_ERR_VALIDATION' && pattern.test(error.message),
    );
  };

  test('takes exactly one explainable statement', () => {
    assert.equal(checkExplainable('  SELECT 1;  '), 'SELECT 1');
    assert.equal(checkExplainable('(SELECT 1)'), '(SELECT 1)');
    refused('SELECT 1; SELECT 2', /2 statements/);
    refused('SELECT 1; COMMIT; DELETE FROM users', /3 statements/);
    refused('   ;  ', /empty/);
    refused('EXPLAIN SELECT 1', /Leave out EXPLAIN/);
  });

  test('refuses statements that cannot run inside a transaction, saying why', () => {
    refused('VACUUM tasks', /VACUUM cannot run inside a transaction/);
    refused('create index concurrently i on tasks (title)', /CREATE INDEX CONCURRENTLY.*shipshape db index/);
    refused('REINDEX TABLE tasks', /REINDEX/);
    refused('ALTER SYSTEM SET work_mem = 1', /ALTER SYSTEM/);
  });

  test('refuses what EXPLAIN does not take', () => {
    refused('DROP TABLE tasks', /starts with DROP/);
    refused('TRUNCATE tasks', /starts with TRUNCATE/);
  });
});

describe('names', () => {
  test('index names follow the runbook and stay within 63 bytes', () => {
    assert.equal(indexNameFor('tasks', ['user_id']), 'idx_tasks_user_id');
    const long = indexNameFor('a'.repeat(40), ['b'.repeat(30), 'c'.repeat(30)]);
    assert.ok(Buffer.byteLength(long) <= 63, long);
    assert.notEqual(long, indexNameFor('a'.repeat(40), ['b'.repeat(30), 'd'.repeat(30)]));
  });

  test('table names are plain or schema-qualified identifiers, nothing else', () => {
    assert.deepEqual(parseTableName('tasks'), { schema: 'public', name: 'tasks' });
    assert.deepEqual(parseTableName('auth.users'), { schema: 'auth', name: 'users' });
    for (const bad of ['tasks;drop table users', 'a.b.c', '"tasks"', '1tasks', '', 'tasks ']) assert.equal(parseTableName(bad), undefined, bad);
  });
});

describe('pg_stat_statements', () => {
  test('uses the PostgreSQL 13+ column names on 13 and later, the old ones before', () => {
    assert.deepEqual(statementColumns(150_020), { total: 'total_exec_time', mean: 'mean_exec_time', max: 'max_exec_time' });
    assert.deepEqual(statementColumns(130_000), { total: 'total_exec_time', mean: 'mean_exec_time', max: 'max_exec_time' });
    assert.deepEqual(statementColumns(120_017), { total: 'total_time', mean: 'mean_time', max: 'max_time' });
  });

  test('the instructions name shared_preload_libraries, the restart and CREATE EXTENSION', () => {
    const text = enableInstructions({ preloaded: false, schema: null }, 'app');
    assert.match(text, /shared_preload_libraries/);
    assert.match(text, /Restart PostgreSQL/);
    assert.match(text, /CREATE EXTENSION IF NOT EXISTS pg_stat_statements/);
    assert.doesNotMatch(enableInstructions({ preloaded: true, schema: null }, 'app'), /Restart/);
  });
});

describe('providers', () => {
  test('purge batches hold at most 30 URLs', () => {
    const urls = Array.from({ length: 65 }, (_, i) => `https://cdn.example.com/${i}.png`);
    assert.deepEqual(
      inBatches(urls).map((batch) => batch.length),
      [30, 30, 5],
    );
  });

  test('the Sentry stats URL carries the documented required parameters', () => {
    const url = new URL(sentryStatsUrl({ apiUrl: 'https://sentry.io', org: 'my-org' }));
    assert.equal(url.pathname, '/api/0/organizations/my-org/stats_v2/');
    assert.equal(url.searchParams.get('field'), 'sum(quantity)');
    assert.equal(url.searchParams.get('groupBy'), 'outcome');
    assert.equal(url.searchParams.get('category'), 'error');
    assert.equal(url.searchParams.get('interval'), '1h');
    assert.equal(url.searchParams.get('statsPeriod'), '24h');
  });
});
