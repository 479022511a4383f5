/**
 * The migration runner against a real PostgreSQL: ordering, tracking, the advisory
 * lock, drift detection, planning in a rolled-back transaction, and down migrations.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import pg from 'pg';
import { Migrator } from '../../src/db/migrator.ts';
import { createPool, type Pool } from '../../src/db/pool.ts';
import { ShipError } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';

const logger = createLogger('silent');
const TRACKING = 'shipshape.schema_migrations';

describe('migrator', () => {
  let database: TestDatabase;
  let pool: Pool;
  let dir: string;
  const migrator = () => new Migrator(pool, { directory: dir, trackingTable: TRACKING }, logger);
  const write = (name: string, sql: string) => writeFile(path.join(dir, name), sql);
  const exists = async (table: string) => (await pool.query('SELECT to_regclass($1) IS NOT NULL AS found', [table])).rows[0].found as boolean;

  beforeEach(async () => {
    database = await createTestDatabase();
    pool = createPool({ connectionString: database.url, max: 4, statementTimeoutMs: 10_000, connectTimeoutMs: 5_000 }, logger);
    dir = await mkdtemp(path.join(tmpdir(), 'shipshape-migrations-'));
    await write('0001_people.sql', 'CREATE TABLE people (id int PRIMARY KEY);');
    await write('0001_people.down.sql', 'DROP TABLE people;');
    await write('0002_pets.sql', 'CREATE TABLE pets (id int PRIMARY KEY, owner int REFERENCES people (id));\nCREATE INDEX pets_owner_idx ON pets (owner);');
    await write('0002_pets.down.sql', 'DROP TABLE pets;');
  });
  afterEach(async () => {
    await pool.end();
    await database.drop();
    await rm(dir, { recursive: true, force: true });
  });

  test('up applies pending migrations in order and records name, checksum and duration', async () => {
    const outcome = await migrator().up();
    assert.equal(outcome.error, undefined);
    assert.deepEqual(
      outcome.results.map((r) => [r.version, r.status]),
      [
        [1, 'success'],
        [2, 'success'],
      ],
    );
    const { rows } = await pool.query(`SELECT version, name, checksum, duration_ms FROM ${TRACKING} ORDER BY version`);
    assert.deepEqual(
      rows.map((r) => [r.version, r.name]),
      [
        [1, 'people'],
        [2, 'pets'],
      ],
    );
    assert.match(rows[0].checksum, /^[0-9a-f]{64}$/);
    assert.deepEqual(
      (await migrator().status()).map((r) => r.state),
      ['applied', 'applied'],
    );
    assert.deepEqual((await migrator().up()).results, [], 'a second run has nothing to do');
  });

  test('up --to stops at the given version', async () => {
    await migrator().up({ to: 1 });
    assert.deepEqual(
      (await migrator().status()).map((r) => r.state),
      ['applied', 'pending'],
    );
  });

  test('plan tries pending migrations in a transaction, reports the changes, and leaves nothing behind', async () => {
    await migrator().up({ to: 1 });
    const plan = await migrator().plan();
    assert.deepEqual(
      plan.pending.map((p) => p.fileName),
      ['0002_pets.sql'],
    );
    const created = plan.changes.filter((c) => c.change === 'created').map((c) => `${c.kind} ${c.name}`);
    assert.ok(created.includes('table public.pets'));
    assert.ok(created.includes('index public.pets_owner_idx'));
    assert.ok(created.some((c) => c.startsWith('column public.pets.owner')));
    assert.equal(await exists('pets'), false);
    assert.deepEqual(
      (await migrator().status()).map((r) => r.state),
      ['applied', 'pending'],
    );
  });

  test('a failing migration is rolled back; earlier ones stand and later ones are not executed', async () => {
    await write('0003_broken.sql', 'CREATE TABLE half_done (id int);\nSELECT no_such_function();');
    await write('0004_later.sql', 'CREATE TABLE later (id int);');
    const outcome = await migrator().up();
    assert.ok(outcome.error instanceof ShipError);
    assert.equal(outcome.error.code, 'SHIP_ERR_MIGRATION_FAILED');
    assert.match(outcome.error.message, /0003_broken\.sql/);
    assert.deepEqual(
      outcome.results.map((r) => r.status),
      ['success', 'success', 'error', 'not-executed'],
    );
    assert.equal(await exists('half_done'), false);
    assert.equal(await exists('later'), false);
    assert.equal(await exists('pets'), true);
  });

  test('a changed applied migration stops the runner and names the file', async () => {
    await migrator().up();
    await write('0001_people.sql', 'CREATE TABLE people (id bigint PRIMARY KEY);');
    await assert.rejects(migrator().up(), (error: ShipError) => error.code === 'SHIP_ERR_MIGRATION_DRIFT' && /0001_people\.sql changed/.test(error.message));
    await assert.rejects(migrator().status(), /0001_people\.sql changed/);
  });

  test('a missing applied migration is refused and named', async () => {
    await migrator().up();
    await unlink(path.join(dir, '0001_people.sql'));
    await unlink(path.join(dir, '0001_people.down.sql'));
    await assert.rejects(
      migrator().status(),
      (error: ShipError) => error.code === 'SHIP_ERR_MIGRATION_DRIFT' && /0001_people\.sql is missing/.test(error.message),
    );
  });

  test('a pending file numbered below an applied one is refused', async () => {
    await migrator().up();
    await pool.query(`DELETE FROM ${TRACKING} WHERE version = 1`);
    await assert.rejects(
      migrator().up(),
      (error: ShipError) => error.code === 'SHIP_ERR_MIGRATION_DRIFT' && /0001_people\.sql is pending but numbered below/.test(error.message),
    );
  });

  test('a database migrated by a newer release stops with both versions named', async () => {
    await migrator().up();
    await pool.query(`INSERT INTO ${TRACKING} (version, name, checksum, duration_ms) VALUES (9, 'future', 'x', 0)`);
    await assert.rejects(migrator().status(), (error: ShipError) => error.code === 'SHIP_ERR_DATABASE_NEWER' && /migration 9 .* up to 2/.test(error.message));
  });

  test('a second runner fails fast with --no-wait, or waits for the lock holder to finish', async () => {
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [0x5348_4d47]);
      await assert.rejects(migrator().up({ noWait: true }), (error: ShipError) => error.code === 'SHIP_ERR_MIGRATION_LOCKED' && /pid \d+/.test(error.message));
      assert.equal(await exists('people'), false);
      const waiting = migrator().up();
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(await exists('people'), false, 'still waiting behind the lock');
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [0x5348_4d47]);
      const outcome = await waiting;
      assert.equal(outcome.error, undefined);
      assert.equal(await exists('pets'), true);
    } finally {
      await holder.end();
    }
  });

  test('down reverts the newest migration, or everything above --to', async () => {
    await migrator().up();
    const one = await migrator().down();
    assert.deepEqual(
      one.results.map((r) => [r.version, r.direction, r.status]),
      [[2, 'down', 'success']],
    );
    assert.equal(await exists('pets'), false);
    await migrator().up();
    await migrator().down({ to: 0 });
    assert.equal(await exists('people'), false);
    assert.deepEqual(
      (await migrator().status()).map((r) => r.state),
      ['pending', 'pending'],
    );
  });

  test('down refuses before touching anything when a migration has no down file', async () => {
    await write('0003_nodown.sql', 'CREATE TABLE nodown (id int);');
    await migrator().up();
    await assert.rejects(
      migrator().down({ to: 0 }),
      (error: ShipError) => error.code === 'SHIP_ERR_MIGRATION_NO_DOWN' && /0003_nodown\.sql/.test(error.message),
    );
    assert.equal(await exists('nodown'), true);
    assert.equal(await exists('pets'), true);
  });

  test('a migration marked no-transaction can CREATE INDEX CONCURRENTLY', async () => {
    await write('0003_concurrent.sql', '-- shipshape:no-transaction\nCREATE INDEX CONCURRENTLY people_id_idx ON people (id);');
    const outcome = await migrator().up();
    assert.equal(outcome.error, undefined);
    assert.equal(await exists('people_id_idx'), true);
    const plan = await migrator().plan();
    assert.deepEqual(plan.pending, []);
  });

  test('badly named files are refused with the file name', async () => {
    await write('3_bad.sql', 'SELECT 1;');
    await assert.rejects(migrator().status(), /3_bad\.sql is not a valid migration file name/);
  });
});
