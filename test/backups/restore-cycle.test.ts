/**
 * The whole cycle on a real PostgreSQL, from the CLI, with both kinds of backup storage:
 * backup → verify (with a scratch restore) → restore beside and swap (the data comes back, the
 * replaced database is kept as <db>__pre_restore_<run>, maintenance is off again) → `runs
 * rollback` renames it back. And a restore into another database with --target.
 */
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { startS3rver, type FakeS3 } from '../fakes/s3.ts';
import { ADMIN_URL, createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import {
  addUsers,
  contents,
  databasesLike,
  dropWithSideDatabases,
  jsonOf,
  maintenanceOn,
  prepareAppDatabase,
  shipshape,
  stepOutput,
  takeBackup,
  withClient,
} from '../helpers/backups.ts';

let s3: FakeS3;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  s3 = await startS3rver();
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await s3.close();
});

async function setup(storage: 'file' | 's3'): Promise<{ database: TestDatabase; env: Record<string, string> }> {
  const database = await createTestDatabase('shipshape_bk');
  cleanups.push(() => dropWithSideDatabases(ADMIN_URL, database));
  const state = await createStateDir();
  cleanups.push(state.cleanup);
  await prepareAppDatabase(database.url);
  const storageEnv: Record<string, string> =
    storage === 'file'
      ? { BACKUP_STORAGE_URL: pathToFileURL(path.join(state.path, 'backups')).href }
      : {
          BACKUP_STORAGE_URL: `s3://${s3.bucket}/${database.name}`,
          S3_ENDPOINT: s3.endpoint,
          S3_FORCE_PATH_STYLE: 'true',
          AWS_REGION: s3.region,
          AWS_ACCESS_KEY_ID: s3.accessKeyId,
          AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        };
  return {
    database,
    env: {
      DATABASE_URL: database.url,
      STATE_DIR: state.path,
      SHIPSHAPE_OPERATOR: 'alice',
      SHIPSHAPE_ALLOW_INLINE_APPROVAL: 'true',
      ...storageEnv,
    },
  };
}

for (const storage of ['file', 's3'] as const) {
  describe(`backup → verify → restore → rollback on PostgreSQL with ${storage} storage`, () => {
    test('a restore brings back the backed-up data and keeps the replaced database; `runs rollback` renames it back', async () => {
      const { database, env } = await setup(storage);
      const backedUp = await contents(database.url);
      const backupId = await takeBackup(env);

      const verified = await shipshape(['db', 'verify', backupId, '--restore', '--json'], env);
      assert.equal(verified.code, 0, verified.stderr);
      assert.equal(jsonOf(verified).ok, true);
      assert.equal(jsonOf(verified).restoreTested, true);

      // The accident: tasks deleted, a user added.
      await withClient(database.url, async (client) => {
        await client.query('DELETE FROM tasks');
        await addUsers(client, ['late@example.com']);
      });
      const damaged = await contents(database.url);

      const restored = await shipshape(['db', 'restore', backupId, '--approved-by', 'bob', '--yes', '--json'], env);
      assert.equal(restored.code, 0, `${restored.stdout}\n${restored.stderr}`);
      const report = jsonOf(restored);
      assert.equal(report.state, 'succeeded');
      const runId = String(report.runId);
      assert.equal(await contents(database.url), backedUp, 'the data is the backup’s');
      assert.equal(await maintenanceOn(database.url), false, 'maintenance is off again');
      const preRestore = `${database.name}__pre_restore_${runId.replace(/^r-/, '').replaceAll('-', '_')}`;
      assert.deepEqual(await databasesLike(ADMIN_URL, `${database.name}__`), [preRestore], 'the replaced database is kept, nothing else is left');
      assert.equal(await contents(database.url.replace(`/${database.name}`, `/${preRestore}`)), damaged, 'the kept database is the replaced one');
      assert.equal(stepOutput(report, 'swap').keptAs, preRestore);

      const listed = await shipshape(['db', 'backups', '--json'], env);
      assert.equal(listed.code, 0, listed.stderr);
      const backups = jsonOf(listed).backups;
      assert.ok(Array.isArray(backups));
      const ids = backups.map((entry: { id?: unknown; verified?: unknown; purpose?: unknown }) => [entry.id, entry.verified, entry.purpose]);
      assert.deepEqual(
        ids,
        [[backupId, 'yes (restore-tested), re-checked ' + new Date().toISOString().slice(0, 10), 'manual']],
        'no safety backup: the kept database is the way back',
      );

      const rolledBack = await shipshape(['runs', 'rollback', runId, '--yes', '--json'], env);
      assert.equal(rolledBack.code, 0, `${rolledBack.stdout}\n${rolledBack.stderr}`);
      assert.equal(jsonOf(rolledBack).state, 'rolled-back');
      assert.equal(await contents(database.url), damaged, 'the pre-restore state is back');
      assert.equal(await maintenanceOn(database.url), false, 'maintenance is off after the rollback');
      assert.deepEqual(await databasesLike(ADMIN_URL, `${database.name}__`), [], 'the restored copy is dropped');
    });
  });
}

describe('restore into another database', () => {
  test('--target creates the database, restores into it and leaves the application database and maintenance mode alone', async () => {
    const { database, env } = await setup('file');
    const backupId = await takeBackup(env);
    const before = await contents(database.url);
    await withClient(database.url, (client) => client.query('DELETE FROM sessions'));
    const changed = await contents(database.url);
    const copy = `${database.name}_copy`;
    cleanups.push(() => withClient(ADMIN_URL, (client: pg.Client) => client.query(`DROP DATABASE IF EXISTS "${copy}" WITH (FORCE)`)).then(() => undefined));

    const restored = await shipshape(['db', 'restore', backupId, '--target', copy, '--approved-by', 'bob', '--yes', '--json'], env);
    assert.equal(restored.code, 0, `${restored.stdout}\n${restored.stderr}`);
    const report = jsonOf(restored);
    assert.deepEqual(stepOutput(report, 'read-only'), { skipped: true });
    assert.deepEqual(stepOutput(report, 'maintenance-on'), { skipped: true });
    assert.equal(stepOutput(report, 'swap').keptAs, null, 'nothing existed to keep');
    assert.deepEqual(await databasesLike(ADMIN_URL, `${copy}__`), [], 'no side database is left');
    const copyUrl = database.url.replace(`/${database.name}`, `/${copy}`);
    assert.equal(await contents(copyUrl), before);
    assert.equal(await contents(database.url), changed, 'the application database is untouched');
    assert.equal(await maintenanceOn(database.url), false);
  });
});

describe('kept pre-restore databases', () => {
  test('`db prune` drops all but the newest kept pre-restore database and says how much disk it held', async () => {
    const { database, env } = await setup('file');
    const backupId = await takeBackup(env);
    const kept: string[] = [];
    for (let round = 0; round < 2; round++) {
      const restored = await shipshape(['db', 'restore', backupId, '--approved-by', 'bob', '--yes', '--json'], env);
      assert.equal(restored.code, 0, `${restored.stdout}\n${restored.stderr}`);
      kept.push(`${database.name}__pre_restore_${String(jsonOf(restored).runId).replace(/^r-/, '').replaceAll('-', '_')}`);
    }
    cleanups.push(async () => {
      for (const name of kept) await withClient(ADMIN_URL, (client: pg.Client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    });
    assert.deepEqual(await databasesLike(ADMIN_URL, `${database.name}__`), [...kept].sort());

    const pruned = await shipshape(['db', 'prune', '--yes', '--yes-irreversible', '--json'], env);
    assert.equal(pruned.code, 0, `${pruned.stdout}\n${pruned.stderr}`);
    const output = stepOutput(jsonOf(pruned), 'drop-pre-restore');
    assert.deepEqual(output.dropped, [kept[0]], 'the older copy is dropped');
    assert.ok(Number(output.freedBytes) > 0, 'and the disk it held is reported');
    assert.deepEqual(await databasesLike(ADMIN_URL, `${database.name}__`), [kept[1]], 'the newest is kept: its run can still be rolled back');
  });
});
