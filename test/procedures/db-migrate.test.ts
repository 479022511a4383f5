/**
 * `shipshape db migrate up` as the runbook's migration procedure, against a real PostgreSQL
 * database and a temporary migrations folder (an app profile override, so Shipshape's own
 * migrations are never touched): the backup prerequisite, --backup, review, test, apply,
 * verify, and rollback by down migrations — or exit 4 naming the backup when one is missing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { shipshapeProfile, type AppProfile } from '../../src/app-profile.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/log.ts';
import { withBackupStore } from '../../src/ops/backups/backup-store.ts';
import { listBackups } from '../../src/ops/backups/catalog.ts';
import { runProcedure, type EngineDeps, type RunReport } from '../../src/ops/engine/index.ts';
import { dbMigrate } from '../../src/ops/procedures/db-migrate.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';

const logger = createLogger('silent');
const TRACKING_TABLE = 'ops_test.schema_migrations';
let database: TestDatabase;
let pool: pg.Pool;
let migrations: string;
let stateDir: string;
let profile: AppProfile;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
  migrations = await mkdtemp(path.join(tmpdir(), 'shipshape-migrations-'));
  cleanups.push(() => rm(migrations, { recursive: true, force: true }));
  const state = await createStateDir();
  stateDir = state.path;
  cleanups.push(state.cleanup);
  profile = { ...shipshapeProfile, migrations: { directory: migrations, trackingTable: TRACKING_TABLE } };
});

after(async () => {
  for (const cleanup of cleanups) await cleanup();
  await pool.end();
  await database.drop();
});

function deps(env: Record<string, string> = {}): EngineDeps {
  const config = loadConfig({ DATABASE_URL: database.url, STATE_DIR: stateDir, SHIPSHAPE_OPERATOR: 'alice', LOG_LEVEL: 'silent', ...env });
  return { config, logger, profile };
}

async function migration(fileName: string, sql: string): Promise<void> {
  await writeFile(path.join(migrations, fileName), sql);
}

async function removeMigration(fileName: string): Promise<void> {
  await rm(path.join(migrations, fileName));
}

async function exists(relation: string): Promise<boolean> {
  const { rows } = await pool.query<{ found: boolean }>('SELECT to_regclass($1::text) IS NOT NULL AS found', [relation]);
  return rows[0]?.found === true;
}

async function appliedVersions(): Promise<number[]> {
  if (!(await exists(TRACKING_TABLE))) return [];
  const { rows } = await pool.query<{ version: number }>(`SELECT version FROM ${TRACKING_TABLE} ORDER BY version`);
  return rows.map((row) => Number(row.version));
}

function step(report: RunReport, id: string) {
  const found = report.steps.find((candidate) => candidate.id === id);
  assert.ok(found, `no step ${id}`);
  return found;
}

const yes = { yes: true };

// One database and one migrations folder, built up migration by migration: the tests run in order.
describe('db migrate up', { concurrency: false }, () => {
  test('without a recent verified backup it refuses with exit 3 and changes nothing; the dry run shows the SQL', async () => {
    await migration(
      '0001_widgets.sql',
      'CREATE TABLE widgets (id integer PRIMARY KEY, name text NOT NULL);\nCREATE INDEX widgets_name_idx ON widgets (name);\n',
    );
    await migration('0001_widgets.down.sql', 'DROP TABLE widgets;\n');

    const plan = await runProcedure(dbMigrate, {}, { dryRun: true }, deps());
    assert.equal(plan.exitCode, 3);
    assert.ok(
      step(plan, 'review').describe.some((line) => line.includes('CREATE TABLE widgets')),
      JSON.stringify(step(plan, 'review').describe),
    );

    const report = await runProcedure(dbMigrate, {}, yes, deps());
    assert.equal(report.exitCode, 3, report.error?.message);
    assert.match(report.error?.message ?? '', /no verified backup of .* — take one first with `shipshape db backup`, or run this with --backup/);
    assert.equal(await exists('public.widgets'), false);
    assert.deepEqual(await appliedVersions(), []);
  });

  test('--backup takes a verified backup first, then tests, applies and verifies the migration', async () => {
    const report = await runProcedure(dbMigrate, { backup: true }, yes, deps());

    assert.equal(report.exitCode, 0, report.error?.message);
    const backupId = step(report, 'backup').output?.backupId;
    assert.equal(typeof backupId, 'string');
    const stored = await withBackupStore(deps().config, listBackups);
    const taken = stored.find((entry) => entry.id === backupId);
    assert.equal(taken?.state, 'good');
    assert.equal(taken?.manifest?.purpose, 'pre-migration');

    assert.deepEqual(await appliedVersions(), [1]);
    assert.equal(await exists('public.widgets'), true);
    assert.ok(step(report, 'review').describe.some((line) => line.includes('CREATE INDEX widgets_name_idx')));
    const objects = report.verification.find((check) => check.name === 'the objects the migrations create exist');
    assert.equal(objects?.ok, true);
    assert.match(objects?.detail ?? '', /\+ 1 table: public\.widgets; \+ 2 indexes: /);
    assert.ok(objects?.detail.includes('public.widgets_name_idx'));
  });

  test('a recent verified backup satisfies the prerequisite, unless MIGRATE_BACKUP_MAX_AGE is shorter than its age', async () => {
    await migration('0002_gadgets.sql', 'CREATE TABLE gadgets (id integer PRIMARY KEY);\nALTER TABLE widgets ADD COLUMN colour text;\n');
    await migration('0002_gadgets.down.sql', 'ALTER TABLE widgets DROP COLUMN colour;\nDROP TABLE gadgets;\n');

    const tooOld = await runProcedure(dbMigrate, {}, yes, deps({ MIGRATE_BACKUP_MAX_AGE: '1ms' }));
    assert.equal(tooOld.exitCode, 3);
    assert.match(tooOld.error?.message ?? '', /newest verified backup b-\S+ is \S+ old \(limit 1ms\)/);
    assert.deepEqual(await appliedVersions(), [1]);

    const report = await runProcedure(dbMigrate, {}, yes, deps());
    assert.equal(report.exitCode, 0, report.error?.message);
    assert.equal(step(report, 'backup').output?.taken, false);
    assert.deepEqual(await appliedVersions(), [1, 2]);
    assert.match(
      report.verification.find((check) => check.name === 'the objects the migrations create exist')?.detail ?? '',
      /\+ 1 column: public\.widgets\.colour text/,
    );
  });

  test('a migration failing after another was applied puts that one back with its down migration (exit 1)', async () => {
    await migration('0003_sprockets.sql', 'CREATE TABLE sprockets (id integer);\n');
    await migration('0003_sprockets.down.sql', 'DROP TABLE sprockets;\n');
    // Outside a transaction it cannot be tried beforehand, so it fails only when applied.
    await migration('0004_broken.sql', '-- shipshape:no-transaction\nCREATE INDEX CONCURRENTLY broken_idx ON no_such_table (id);\n');

    const report = await runProcedure(dbMigrate, {}, yes, deps());

    assert.equal(report.exitCode, 1, report.error?.message);
    assert.match(report.error?.message ?? '', /0004_broken\.sql failed to apply.*reverted with their down migrations/);
    assert.deepEqual(await appliedVersions(), [1, 2]);
    assert.equal(await exists('public.sprockets'), false);
    await removeMigration('0003_sprockets.sql');
    await removeMigration('0003_sprockets.down.sql');
    await removeMigration('0004_broken.sql');
  });

  test('when a version this run applied has no down file, rollback stops with exit 4 and names the backup to restore', async () => {
    await migration('0003_cogs.sql', 'CREATE TABLE cogs (id integer);\n');
    await migration('0004_broken.sql', '-- shipshape:no-transaction\nCREATE INDEX CONCURRENTLY broken_idx ON no_such_table (id);\n');

    const report = await runProcedure(dbMigrate, {}, yes, deps());

    assert.equal(report.exitCode, 4, report.error?.message);
    assert.equal(report.state, 'needs-attention');
    const backupId = step(report, 'backup').output?.backupId;
    assert.equal(typeof backupId, 'string');
    assert.ok(report.error?.message.includes(`shipshape db restore ${String(backupId)}`), report.error?.message);
    assert.match(report.error?.message ?? '', /0003_cogs\.sql has no \.down\.sql/);
    assert.deepEqual(await appliedVersions(), [1, 2, 3], 'nothing was reverted: the state is exactly what the message says');
  });
});
