/**
 * `shipshape db explain`: EXPLAIN (ANALYZE, BUFFERS) that never changes anything — it runs in a
 * transaction that is rolled back, as a throwaway role that may only read the app's tables (or
 * write them, for a write), so it cannot touch sequences or other sessions either; more than
 * one statement, or one that cannot run in a transaction, is refused. Also on the embedded
 * database.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { isShipError } from '../../src/errors.ts';
import { explainAnalyze } from '../../src/ops/diagnostics/explain.ts';
import { runCli } from '../helpers/cli.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { parseJson } from '../helpers/live-operations.ts';

let database: TestDatabase;
let pool: pg.Pool;

before(async () => {
  database = await createTestDatabase('shipshape_live');
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
  await pool.query('CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)');
  await pool.query("INSERT INTO notes (body) VALUES ('keep me'), ('and me')");
  await pool.query('CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS $$ DELETE FROM notes RETURNING 1 $$');
});

after(async () => {
  await pool?.end();
  await database?.drop();
});

const rows = async () => (await pool.query<{ body: string }>('SELECT body FROM notes ORDER BY id')).rows.map((row) => row.body);
const options = { statementTimeoutMs: 10_000 };

describe('db explain', () => {
  test('explains a read with ANALYZE and BUFFERS, run as a role that may only read', async () => {
    const result = await explainAnalyze(pool, "SELECT * FROM notes WHERE body = 'keep me'", options);
    assert.equal(result.mayWrite, false);
    assert.ok(
      result.plan.some((line) => /Seq Scan on notes/.test(line)),
      result.plan.join('\n'),
    );
    assert.ok(
      result.plan.some((line) => /actual time=/.test(line)),
      'ANALYZE ran it',
    );
    assert.ok(
      result.plan.some((line) => /Buffers:/.test(line)),
      'BUFFERS reported',
    );
    assert.equal(result.analyzed, true);
    assert.ok(result.notes.some((note) => /may only read/.test(note)));
  });

  test('a write is executed for the plan and rolled back: the data is unchanged', async () => {
    const result = await explainAnalyze(pool, "UPDATE notes SET body = 'changed'", options);
    assert.equal(result.mayWrite, true);
    assert.ok(
      result.plan.some((line) => /Update on notes/.test(line)),
      result.plan.join('\n'),
    );
    const deleted = await explainAnalyze(pool, 'DELETE FROM notes', { ...options, json: true });
    assert.ok(Array.isArray(deleted.planJson), 'FORMAT JSON plan with --json');
    assert.deepEqual(await rows(), ['keep me', 'and me']);
  });

  test('a function that writes cannot write through a read', async () => {
    await assert.rejects(explainAnalyze(pool, 'SELECT sneaky()', options), (error: unknown) => isShipError(error) && /tried to write/.test(error.message));
    assert.deepEqual(await rows(), ['keep me', 'and me']);
  });

  test('it cannot reach other sessions, sequences, advisory locks or another connection (dblink)', async () => {
    const bystander = new pg.Client({ connectionString: database.url });
    await bystander.connect();
    try {
      const pid = (await bystander.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const sequenceBefore = (await pool.query<{ last_value: string }>('SELECT last_value FROM notes_id_seq')).rows[0]!.last_value;
      await pool.query('CREATE EXTENSION IF NOT EXISTS dblink');
      const attempts = [
        `SELECT pg_terminate_backend(${pid})`,
        `SELECT pg_cancel_backend(${pid})`,
        "SELECT nextval('notes_id_seq')",
        "INSERT INTO notes (body) VALUES ('drawn from the sequence')",
        `SELECT dblink_exec('dbname=${database.name} host=127.0.0.1 user=postgres', 'DELETE FROM notes')`,
      ];
      for (const sql of attempts) {
        await assert.rejects(explainAnalyze(pool, sql, options), (error: unknown) => isShipError(error) && error.code === 'SHIP_ERR_VALIDATION', sql);
      }
      assert.equal((await bystander.query('SELECT 1 AS alive')).rows[0].alive, 1, 'the other session was neither terminated nor cancelled');
      assert.equal(
        (await pool.query<{ last_value: string }>('SELECT last_value FROM notes_id_seq')).rows[0]!.last_value,
        sequenceBefore,
        'no sequence value was drawn',
      );
      assert.deepEqual(await rows(), ['keep me', 'and me']);

      // A session-level advisory lock survives a rollback; explain releases it before handing the connection back.
      const locked = await explainAnalyze(pool, 'SELECT pg_advisory_lock(4242)', options);
      assert.equal(locked.analyzed, true);
      assert.equal((await bystander.query('SELECT pg_try_advisory_lock(4242) AS got')).rows[0].got, true, 'the advisory lock was not kept');
    } finally {
      await bystander.end();
    }
  });

  test('without the right to create roles it shows the estimated plan and executes nothing', async () => {
    await pool.query('CREATE ROLE shipshape_test_no_createrole_' + process.pid + ' LOGIN');
    const role = 'shipshape_test_no_createrole_' + process.pid;
    await pool.query(`GRANT SELECT ON notes TO ${role}`);
    const url = new URL(database.url);
    url.username = role;
    url.password = '';
    const limited = new pg.Pool({ connectionString: url.toString(), max: 1 });
    try {
      const result = await explainAnalyze(limited, 'SELECT * FROM notes', options);
      assert.equal(result.analyzed, false);
      assert.ok(!result.plan.some((line) => /actual time=/.test(line)), 'not executed');
      assert.ok(
        result.notes.some((note) => /estimated plan only/.test(note) && /CREATEROLE/.test(note)),
        result.notes.join('\n'),
      );
    } finally {
      await limited.end();
      await pool.query(`REVOKE ALL ON notes FROM ${role}`);
      await pool.query(`DROP ROLE ${role}`);
    }
  });

  test('several statements, or a COMMIT smuggled in, are refused and nothing runs', async () => {
    for (const sql of ['SELECT 1; DELETE FROM notes', 'SELECT 1; COMMIT; DELETE FROM notes']) {
      await assert.rejects(explainAnalyze(pool, sql, options), (error: unknown) => isShipError(error) && error.code === 'SHIP_ERR_VALIDATION');
    }
    assert.deepEqual(await rows(), ['keep me', 'and me']);
  });

  test('an unknown table is bad input naming the cause', async () => {
    await assert.rejects(
      explainAnalyze(pool, 'SELECT * FROM nowhere', options),
      (error: unknown) => isShipError(error) && /relation "nowhere" does not exist/.test(error.message),
    );
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
