/**
 * Backups must not resurrect erased users: take a real pg_dump, erase a user, restore the dump
 * into a database, re-apply the erasure ledger (merged back from its mirror in legal storage)
 * and the user is gone again while everyone else stays.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { openObjectStore, type ObjectStore } from '../../src/adapters/storage/index.ts';
import { defaultUsersTable, eraseUser, reapplyErasureLedger, remainingUserRows } from '../../src/domain/erasure.ts';
import { LEDGER_PREFIX, mirrorErasureRecord, pushLedgerToMirror, readErasureLedger } from '../../src/domain/erasure-ledger.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { directRowCounts, seedUser } from '../helpers/users.ts';

const run = promisify(execFile);

describe('erasure ledger', () => {
  let api: TestApi;
  let folder: string;
  let legal: ObjectStore;
  let restored: TestDatabase | undefined;
  let restoredPool: pg.Pool | undefined;

  before(async () => {
    api = await startTestApi();
    folder = await mkdtemp(path.join(tmpdir(), 'shipshape-legal-'));
    legal = openObjectStore(pathToFileURL(folder).href);
  });
  after(async () => {
    await restoredPool?.end();
    await restored?.drop();
    await api.close();
    await rm(folder, { recursive: true, force: true });
  });

  test('after restoring a backup taken before an erasure, re-applying the ledger erases the user again', async () => {
    const pool = api.server.database.pool;
    const ada = await seedUser(api, { label: 'ada' });
    const bob = await seedUser(api, { label: 'bob' });
    const dump = path.join(folder, 'before-erasure.sql');
    await run('pg_dump', ['--no-owner', '--no-privileges', '--file', dump, api.config.databaseUrl!]);

    const { record } = await eraseUser(pool, defaultUsersTable, { userId: ada.id, operator: 'carol', ticket: 'GDPR-9', reason: 'operator' });
    assert.equal(await mirrorErasureRecord(legal, record), `${LEDGER_PREFIX}${record.id}.json`);

    restored = await createTestDatabase('shipshape_restored');
    await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--file', dump, restored.url]);
    restoredPool = new pg.Pool({ connectionString: restored.url, max: 2 });
    // An idle connection ended by the server must not surface as an uncaught error after the test.
    restoredPool.on('error', () => undefined);
    assert.equal((await directRowCounts(restoredPool, ada.id)).users, 1, 'the backup brought Ada back');

    const withoutMirror = await reapplyErasureLedger(restoredPool);
    assert.deepEqual(withoutMirror, { erased: 0, ledgerRecords: 0, mergedFromMirror: 0 }, 'the restored ledger predates the erasure');

    const bobBefore = await directRowCounts(restoredPool, bob.id);
    const reapplied = await reapplyErasureLedger(restoredPool, { legalStore: legal, operator: 'dave' });
    assert.deepEqual(reapplied, { erased: 1, ledgerRecords: 1, mergedFromMirror: 1 });
    assert.deepEqual(await remainingUserRows(restoredPool, defaultUsersTable, ada.id), {});
    assert.deepEqual(Object.values(await directRowCounts(restoredPool, ada.id)), [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(await directRowCounts(restoredPool, bob.id), bobBefore);
    assert.deepEqual(
      (await readErasureLedger(restoredPool, { email: ada.email })).map((entry) => entry.id),
      [record.id],
      'the salt came back with the backup',
    );
    const audit = await restoredPool.query("SELECT actor FROM audit_log WHERE action = 'gdpr.erasure.reapplied'");
    assert.deepEqual(audit.rows, [{ actor: 'operator:dave' }]);

    assert.deepEqual(await reapplyErasureLedger(restoredPool, { legalStore: legal }), { erased: 0, ledgerRecords: 1, mergedFromMirror: 0 }, 'idempotent');
  });

  test('rows of an erased user copied back into the database are erased again by the ledger alone', async () => {
    const pool = api.server.database.pool;
    const cy = await seedUser(api, { label: 'cy' });
    const saved = await pool.query('SELECT * FROM users WHERE id = $1', [cy.id]);
    const savedTasks = await pool.query('SELECT * FROM tasks WHERE user_id = $1', [cy.id]);
    await eraseUser(pool, defaultUsersTable, { userId: cy.id, operator: 'carol', ticket: 'GDPR-10', reason: 'operator' });

    const user = saved.rows[0];
    await pool.query('INSERT INTO users (id, email, password_hash, display_name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)', [
      user.id,
      user.email,
      user.password_hash,
      user.display_name,
      user.created_at,
      user.updated_at,
    ]);
    for (const task of savedTasks.rows) {
      await pool.query('INSERT INTO tasks (id, user_id, title, notes, done, due_date, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
        task.id,
        task.user_id,
        task.title,
        task.notes,
        task.done,
        task.due_date,
        task.created_at,
        task.updated_at,
      ]);
    }
    assert.equal((await directRowCounts(pool, cy.id)).tasks, 2);

    const result = await reapplyErasureLedger(pool);
    assert.equal(result.erased, 1);
    assert.deepEqual(await remainingUserRows(pool, defaultUsersTable, cy.id), {});
    assert.equal((await api.request('POST', '/auth/login', { body: { email: cy.email, password: cy.password } })).status, 401);
  });

  test('records missing from the mirror are pushed to it', async () => {
    const pool = api.server.database.pool;
    const before = (await legal.list(LEDGER_PREFIX)).length;
    const ledger = await readErasureLedger(pool);
    assert.equal(await pushLedgerToMirror(pool, legal), ledger.length - before);
    assert.equal((await legal.list(LEDGER_PREFIX)).length, ledger.length);
    assert.equal(await pushLedgerToMirror(pool, legal), 0);
  });
});
