/**
 * `shipshape db explain`: EXPLAIN (ANALYZE, BUFFERS) that never changes data — writes run
 * in a transaction that is rolled back, reads run READ ONLY, and more than one statement or
 * one that cannot run in a transaction is refused. Also on the embedded database.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { isShipError } from '../../src/errors.ts';
import { explainAnalyze } from '../../src/ops/diagnostics/explain.ts';
import { runCli } from '../helpers/cli.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { parseJson } from './fixtures.ts';

let database: TestDatabase;
let pool: pg.Pool;

before(async () => {
  database = await createTestDatabase('shipshape_live');
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
  await pool.query('CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)');
  await pool.query("INSERT INTO notes (body) VALUES ('keep me'), ('and me')");
  await pool.query("CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS $$ DELETE FROM notes RETURNING 1 $$");
});

after(async () => {
  await pool?.end();
  await database?.drop();
});

const rows = async () => (await pool.query<{ body: string }>('SELECT body FROM notes ORDER BY id')).rows.map((row) => row.body);
const options = { statementTimeoutMs: 10_000 };

describe('db explain', () => {
  test('explains a read with ANALYZE and BUFFERS, READ ONLY', async () => {
    const result = await explainAnalyze(pool, "SELECT * FROM notes WHERE body = 'keep me'", options);
    assert.equal(result.mayWrite, false);
    assert.ok(result.plan.some((line) => /Seq Scan on notes/.test(line)), result.plan.join('\n'));
    assert.ok(result.plan.some((line) => /actual time=/.test(line)), 'ANALYZE ran it');
    assert.ok(result.plan.some((line) => /Buffers:/.test(line)), 'BUFFERS reported');
    assert.ok(result.notes.some((note) => /READ ONLY/.test(note)));
  });

  test('a write is executed for the plan and rolled back: the data is unchanged', async () => {
    const result = await explainAnalyze(pool, "UPDATE notes SET body = 'changed'", options);
    assert.equal(result.mayWrite, true);
    assert.ok(result.plan.some((line) => /Update on notes/.test(line)), result.plan.join('\n'));
    const deleted = await explainAnalyze(pool, 'DELETE FROM notes', { ...options, json: true });
    assert.ok(Array.isArray(deleted.planJson), 'FORMAT JSON plan with --json');
    assert.deepEqual(await rows(), ['keep me', 'and me']);
  });

  test('a function that writes cannot write through a read', async () => {
    await assert.rejects(explainAnalyze(pool, 'SELECT sneaky()', options), (error: unknown) => isShipError(error) && /tried to write/.test(error.message));
    assert.deepEqual(await rows(), ['keep me', 'and me']);
  });

  test('several statements, or a COMMIT smuggled in, are refused and nothing runs', async () => {
    for (const sql of ["SELECT 1; DELETE FROM notes", "SELECT 1; COMMIT; DELETE FROM notes"]) {
      await assert.rejects(explainAnalyze(pool, sql, options), (error: unknown) => isShipError(error) && error.code === 'SHIP_ERR_VALIDATION');
    }
    assert.deepEqual(await rows(), ['keep me', 'and me']);
  });

  test('an unknown table is bad input naming the cause', async () => {
    await assert.rejects(explainAnalyze(pool, 'SELECT * FROM nowhere', options), (error: unknown) => isShipError(error) && /relation "nowhere" does not exist/.test(error.message));
  });

  test('the CLI prints the plan; VACUUM is refused with exit 2', async () => {
    const state = await createStateDir();
    try {
      const env = { DATABASE_URL: database.url, STATE_DIR: state.path };
      const ok = await runCli(['db', 'explain', 'SELECT count(*) FROM notes', '--json'], env);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(parseJson(ok.stdout).rolledBack, true);
      const vacuum = await runCli(['db', 'explain', 'VACUUM notes'], env);
      assert.equal(vacuum.code, 2);
      assert.match(vacuum.stderr, /VACUUM cannot run inside a transaction/);
    } finally {
      await state.cleanup();
    }
  });

  test('works on the embedded database too', async () => {
    const state = await createStateDir();
    try {
      const result = await runCli(['db', 'explain', 'SELECT * FROM pg_class WHERE relname = $$x$$'], { STATE_DIR: state.path });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /actual time=/);
      assert.match(result.stdout, /rolled back/);
    } finally {
      await state.cleanup();
    }
  });
});
