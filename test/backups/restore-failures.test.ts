/**
 * The restore's failure paths on a real PostgreSQL, from the CLI: a corrupted backup, a
 * restored copy that does not match its manifest, a process killed (SIGKILL) at every step
 * and rolled back, a missing approval, a backup started while a restore holds the database,
 * and backup ids that do not exist.
 */
import assert from 'node:assert/strict';
import { open, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { ADMIN_URL, createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import {
  contents,
  databasesLike,
  dropWithSideDatabases,
  jsonOf,
  maintenanceOn,
  prepareAppDatabase,
  runState,
  shipshape,
  spawnShipshape,
  stepStarted,
  takeBackup,
  waitForJournal,
  withClient,
} from '../helpers/backups.ts';

const cleanups: Array<() => Promise<void>> = [];

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function setup(): Promise<{ database: TestDatabase; stateDir: string; env: (operator?: string) => Record<string, string> }> {
  const database = await createTestDatabase('shipshape_bk');
  cleanups.push(() => dropWithSideDatabases(ADMIN_URL, database));
  const state = await createStateDir();
  cleanups.push(state.cleanup);
  await prepareAppDatabase(database.url);
  return {
    database,
    stateDir: state.path,
    env: (operator = 'alice') => ({ DATABASE_URL: database.url, STATE_DIR: state.path, SHIPSHAPE_OPERATOR: operator, SHIPSHAPE_ALLOW_INLINE_APPROVAL: 'true' }),
  };
}

/** What must hold whenever a restore did not go ahead or was undone. */
async function assertUntouched(database: TestDatabase, expected: string): Promise<void> {
  assert.equal(await contents(database.url), expected, 'the data is exactly as before');
  assert.equal(await maintenanceOn(database.url), false, 'maintenance mode is off');
  assert.deepEqual(await databasesLike(ADMIN_URL, `${database.name}__`), [], 'nothing is left parked');
}

describe('db restore failures', () => {
  test('a corrupted stored backup fails `db verify` and `db restore` refuses with exit 3, changing nothing', async () => {
    const s = await setup();
    const backupId = await takeBackup(s.env());
    const dumpFile = path.join(s.stateDir, 'backups', backupId, 'dump');
    const handle = await open(dumpFile, 'r+');
    await handle.write(Buffer.from('corrupt'), 0, 7, 200);
    await handle.close();
    const before = await contents(s.database.url);

    const verified = await shipshape(['db', 'verify', backupId], s.env());
    assert.equal(verified.code, 3);
    assert.match(verified.stderr, /SHIP_ERR_BACKUP_NOT_VERIFIED.*SHA-256 on re-read/);

    const restored = await shipshape(['db', 'restore', backupId, '--approved-by', 'bob', '--yes', '--json'], s.env());
    assert.equal(restored.code, 3, restored.stderr);
    const report = jsonOf(restored);
    assert.equal(report.state, 'failed');
    assert.match(String(report.error && typeof report.error === 'object' && 'message' in report.error ? report.error.message : ''), /does not verify/);
    await assertUntouched(s.database, before);
    assert.deepEqual((await readdir(path.join(s.stateDir, 'backups'))).sort(), [backupId], 'no safety backup was taken: nothing started');
  });

  test('when the restored copy does not match the manifest, nothing is swapped: the copy is dropped, the data untouched, exit 1', async () => {
    const s = await setup();
    const backupId = await takeBackup(s.env());
    // The manifest now claims a row count the dump does not hold.
    const manifestFile = path.join(s.stateDir, 'backups', backupId, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as { tables: Array<{ name: string; rows: number }> };
    for (const table of manifest.tables) if (table.name === 'public.tasks') table.rows += 1;
    await writeFile(manifestFile, JSON.stringify(manifest));
    await withClient(s.database.url, (client) => client.query("UPDATE tasks SET done = true WHERE title LIKE 'first%'"));
    const before = await contents(s.database.url);

    const restored = await shipshape(['db', 'restore', backupId, '--approved-by', 'bob', '--yes', '--json'], s.env());
    assert.equal(restored.code, 1, `${restored.stdout}\n${restored.stderr}`);
    const report = jsonOf(restored);
    assert.equal(report.state, 'rolled-back');
    assert.match(JSON.stringify(report.error), /does not match backup/);
    await assertUntouched(s.database, before);
  });

  const steps = ['read-only', 'fetch', 'restore', 'verify-tables', 'migrate', 'erasure-ledger', 'maintenance-on', 'swap', 'maintenance-off', 'clean-up'];
  test(`a restore killed (SIGKILL) at any step — ${steps.join(', ')} — is rolled back by \`runs rollback\` to exactly the pre-restore state`, async () => {
    const s = await setup();
    const backupId = await takeBackup(s.env());
    await withClient(s.database.url, (client) => client.query("DELETE FROM tasks WHERE title LIKE 'second%'"));
    const before = await contents(s.database.url);
    const earlier: string[] = [];
    for (const step of steps) {
      const running = spawnShipshape(['db', 'restore', backupId, '--approved-by', 'bob', '--yes'], s.env());
      const runId = await waitForJournal(s.stateDir, (text) => !earlier.some((id) => text.includes(id)) && stepStarted(step)(text), `step ${step} starting`);
      running.child.kill('SIGKILL');
      const killed = await running.done;
      // A short last step may finish before the signal lands; a finished restore rolls back the same way.
      const state = await runState(s.env(), runId);
      assert.ok(
        killed.signal === 'SIGKILL' ? state === 'interrupted' : state === 'succeeded',
        `killed at ${step}: ${killed.signal ?? killed.code} and ${state}`,
      );
      const rolledBack = await shipshape(['runs', 'rollback', runId, '--yes', '--json'], s.env());
      assert.equal(rolledBack.code, 0, `rollback after a kill at ${step}:\n${rolledBack.stdout}\n${rolledBack.stderr}`);
      assert.equal(jsonOf(rolledBack).state, 'rolled-back');
      await assertUntouched(s.database, before);
      earlier.push(runId);
    }
  });

  test('a restore killed mid-way can be finished with `runs resume`', async () => {
    const s = await setup();
    const backupId = await takeBackup(s.env());
    const backedUp = await contents(s.database.url);
    await withClient(s.database.url, (client) => client.query("DELETE FROM tasks WHERE title LIKE 'second%'"));
    const running = spawnShipshape(['db', 'restore', backupId, '--approved-by', 'bob', '--yes'], s.env());
    const runId = await waitForJournal(s.stateDir, (text) => stepStarted('swap')(text) && !text.includes('"run.ended"'), 'the swap step starting');
    running.child.kill('SIGKILL');
    assert.equal((await running.done).signal, 'SIGKILL');
    const resumed = await shipshape(['runs', 'resume', runId, '--yes', '--json'], s.env());
    assert.equal(resumed.code, 0, `${resumed.stdout}\n${resumed.stderr}`);
    assert.equal(jsonOf(resumed).state, 'succeeded');
    assert.equal(await contents(s.database.url), backedUp);
    assert.equal(await maintenanceOn(s.database.url), false);
    assert.deepEqual(await databasesLike(ADMIN_URL, `${s.database.name}__`), [
      `${s.database.name}__pre_restore_${runId.replace(/^r-/, '').replaceAll('-', '_')}`,
    ]);
  });

  test('without a second operator’s approval the restore waits (exit 3); self-approval is refused; an approved run goes ahead', async () => {
    const s = await setup();
    const backupId = await takeBackup(s.env());
    const before = await contents(s.database.url);

    const requested = await shipshape(['db', 'restore', backupId, '--json'], s.env('alice'));
    assert.equal(requested.code, 3, requested.stderr);
    const report = jsonOf(requested);
    assert.equal(report.state, 'awaiting-approval');
    const runId = String(report.runId);
    await assertUntouched(s.database, before);

    const selfApproved = await shipshape(['approve', runId], s.env('alice'));
    assert.equal(selfApproved.code, 2);
    assert.match(selfApproved.stderr, /SHIP_ERR_SELF_APPROVAL/);

    const approved = await shipshape(['approve', runId], s.env('bob'));
    assert.equal(approved.code, 0, approved.stderr);
    const resumed = await shipshape(['runs', 'resume', runId, '--yes', '--json'], s.env('alice'));
    assert.equal(resumed.code, 0, `${resumed.stdout}\n${resumed.stderr}`);
    assert.equal(jsonOf(resumed).state, 'succeeded');
  });

  test('a backup started while a restore holds the database refuses, naming the restore’s run id', async () => {
    const s = await setup();
    const backupId = await takeBackup(s.env());
    // Hold the app_state row so the restore stops at its first step, holding its lock.
    const blocker = new pg.Client({ connectionString: s.database.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('SELECT * FROM app_state FOR UPDATE');
    const restore = spawnShipshape(['db', 'restore', backupId, '--approved-by', 'bob', '--yes'], s.env());
    try {
      const runId = await waitForJournal(s.stateDir, stepStarted('read-only'), 'the restore holding its lock');
      const backup = await shipshape(['db', 'backup'], s.env('carol'));
      assert.equal(backup.code, 3, backup.stderr);
      assert.match(backup.stderr, /SHIP_ERR_LOCKED/);
      assert.ok(backup.stderr.includes(runId), `the refusal names the holder ${runId}: ${backup.stderr}`);
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    const finished = await restore.done;
    assert.equal(finished.code, 0, finished.stderr);
  });

  test('an unknown backup id is refused with a message saying how to list the backups; a malformed one is bad input', async () => {
    const s = await setup();
    const unknown = await shipshape(['db', 'restore', 'b-20200101-000000-nothing', '--approved-by', 'bob', '--yes'], s.env());
    assert.equal(unknown.code, 3);
    assert.match(unknown.stderr, /There is no backup b-20200101-000000-nothing in .*shipshape db backups/);
    const malformed = await shipshape(['db', 'restore', '../etc/passwd', '--approved-by', 'bob', '--yes'], s.env());
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /<backup>: is not a backup id/);
  });
});
