/**
 * Backups must not resurrect erased users: back up, erase a user, restore the backup with
 * `shipshape db restore`, and the user stays gone while everyone else comes back — and the
 * restore report says how many accounts it erased again.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import pg from 'pg';
import { loadConfig } from '../../src/config/index.ts';
import { defaultUsersTable, eraseUser } from '../../src/domain/erasure.ts';
import { mirrorErasureRecord } from '../../src/domain/erasure-ledger.ts';
import { withLegalStore } from '../../src/domain/legal-store.ts';
import { ADMIN_URL, createStateDir, createTestDatabase } from '../helpers/postgres.ts';
import { dropWithSideDatabases, jsonOf, prepareAppDatabase, shipshape, stepOutput, takeBackup, withClient } from '../helpers/backups.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

test('a user erased after a backup stays erased when that backup is restored', async () => {
  const database = await createTestDatabase('shipshape_bk_gdpr');
  cleanups.push(() => dropWithSideDatabases(ADMIN_URL, database));
  const state = await createStateDir();
  cleanups.push(state.cleanup);
  await prepareAppDatabase(database.url);
  const env = { DATABASE_URL: database.url, STATE_DIR: state.path, SHIPSHAPE_OPERATOR: 'alice', SHIPSHAPE_ALLOW_INLINE_APPROVAL: 'true' };

  const backupId = await takeBackup(env);

  const pool = new pg.Pool({ connectionString: database.url, max: 2 });
  try {
    const { rows } = await pool.query<{ id: string }>("SELECT id FROM users WHERE email = 'ada@example.com'");
    const { record } = await eraseUser(pool, defaultUsersTable, { userId: rows[0]!.id, operator: 'carol', ticket: 'GDPR-42', reason: 'operator' });
    await withLegalStore(loadConfig(env), (store) => mirrorErasureRecord(store, record));
  } finally {
    await pool.end();
  }

  const restored = await shipshape(['db', 'restore', backupId, '--approved-by', 'bob', '--yes', '--json'], env);
  assert.equal(restored.code, 0, `${restored.stdout}\n${restored.stderr}`);
  assert.equal(stepOutput(jsonOf(restored), 'erasure-ledger').erased, 1, 'the report says one account was erased again');

  const emails = await withClient(database.url, async (client) =>
    (await client.query<{ email: string }>('SELECT email FROM users ORDER BY email')).rows.map((row) => row.email),
  );
  assert.deepEqual(emails, ['grace@example.com', 'linus@example.com'], 'Ada stays erased; everyone else came back');
  const orphans = await withClient(
    database.url,
    async (client) => (await client.query<{ n: number }>("SELECT count(*)::int AS n FROM tasks WHERE title LIKE '%ada@example.com'")).rows[0]?.n,
  );
  assert.equal(orphans, 0, "none of Ada's tasks came back either");
});
