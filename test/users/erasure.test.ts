/**
 * GDPR erasure against real PostgreSQL: every table that references the user (found through
 * the foreign-key catalog, including tables this test creates, recursively) ends with zero of
 * the user's rows, other users keep theirs, the ledger holds no personal data, and a failed
 * verification rolls everything back.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { eraseUser, remainingUserRows, defaultUsersTable } from '../../src/domain/erasure.ts';
import { ledgerEmailHash, readErasureLedger } from '../../src/domain/erasure-ledger.ts';
import { mapUserData } from '../../src/domain/user-data-map.ts';
import { ShipError } from '../../src/errors.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { directRowCounts, seedUser, type SeededUser } from '../helpers/users.ts';

describe('erasure', () => {
  let api: TestApi;
  const pool = () => api.server.database.pool;

  before(async () => {
    api = await startTestApi();
    // Tables "added next year": plain NO ACTION keys (so order matters), a second level, an odd
    // schema and name, and a table that references the user both directly and through tasks.
    await pool().query(`
      CREATE TABLE gdpr_test_devices (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), owner uuid NOT NULL REFERENCES users (id), name text);
      CREATE TABLE gdpr_test_device_tokens (id serial PRIMARY KEY, device_id uuid NOT NULL REFERENCES gdpr_test_devices (id), push_token text);
      CREATE SCHEMA "Extra Data";
      CREATE TABLE "Extra Data"."Task ""Notes""" (id serial PRIMARY KEY, task_id uuid NOT NULL REFERENCES tasks (id), body text);
      CREATE TABLE task_shares (task_id uuid NOT NULL REFERENCES tasks (id), shared_with uuid NOT NULL REFERENCES users (id), PRIMARY KEY (task_id, shared_with));
    `);
  });
  after(async () => {
    await api.close();
  });

  async function addExtraRows(owner: SeededUser): Promise<void> {
    const { rows } = await pool().query<{ id: string }>("INSERT INTO gdpr_test_devices (owner, name) VALUES ($1, 'phone') RETURNING id", [owner.id]);
    await pool().query("INSERT INTO gdpr_test_device_tokens (device_id, push_token) VALUES ($1, 'ExponentPushToken[abc]')", [rows[0]!.id]);
    await pool().query('INSERT INTO "Extra Data"."Task ""Notes""" (task_id, body) VALUES ($1, $2)', [owner.taskIds[0], 'remember the receipt']);
  }

  async function count(sql: string, params: unknown[]): Promise<number> {
    const { rows } = await pool().query<{ n: number }>(sql, params);
    return rows[0]!.n;
  }

  test('the data map finds every referencing table through the catalog, recursively', async () => {
    const map = await mapUserData(pool(), defaultUsersTable);
    const names = map.tables.map((table) => table.qualifiedName);
    for (const expected of [
      'public.users',
      'public.tasks',
      'public.sessions',
      'public.audit_log',
      'public.deletion_requests',
      'public.deletion_approvals',
      'public.gdpr_test_devices',
      'public.gdpr_test_device_tokens',
      'Extra Data.Task "Notes"',
      'public.task_shares',
    ]) {
      assert.ok(names.includes(expected), `${expected} is in ${names.join(', ')}`);
    }
    assert.ok(!names.includes('public.erasure_ledger'), 'the ledger does not reference users');
    const depth = Object.fromEntries(map.tables.map((table) => [table.qualifiedName, table.depth]));
    assert.ok(depth['public.gdpr_test_device_tokens']! > depth['public.gdpr_test_devices']!);
    assert.ok(depth['public.task_shares']! > depth['public.tasks']!, 'task_shares goes before tasks');
  });

  test('erasure leaves zero rows of the user in every table, keeps other users whole, and writes a ledger row without personal data', async () => {
    const ada = await seedUser(api, { label: 'ada' });
    const bob = await seedUser(api, { label: 'bob' });
    await addExtraRows(ada);
    await addExtraRows(bob);
    // Bob shares a task with Ada, and Ada shares hers with Bob: both rows are Ada's data.
    await pool().query('INSERT INTO task_shares (task_id, shared_with) VALUES ($1, $2), ($3, $4)', [bob.taskIds[0], ada.id, ada.taskIds[0], bob.id]);
    await pool().query(
      "INSERT INTO user_exports (user_id, storage_key, location, bytes, sha256, tables, created_by) VALUES ($1, 'exports/x.tar.gz', 'file:///x', 1, repeat('a', 64), '{}', 'alice')",
      [ada.id],
    );
    const bobBefore = await directRowCounts(pool(), bob.id);

    const { record, email } = await eraseUser(pool(), defaultUsersTable, { userId: ada.id, operator: 'carol', ticket: 'GDPR-1', reason: 'operator' });

    assert.equal(email, ada.email);
    assert.deepEqual(await remainingUserRows(pool(), defaultUsersTable, ada.id), {});
    assert.deepEqual(Object.values(await directRowCounts(pool(), ada.id)), [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(await count('SELECT count(*)::int AS n FROM gdpr_test_devices WHERE owner = $1', [ada.id]), 0);
    assert.equal(await count('SELECT count(*)::int AS n FROM gdpr_test_device_tokens WHERE push_token IS NOT NULL', []), 1, "only Bob's device token is left");
    assert.equal(await count('SELECT count(*)::int AS n FROM "Extra Data"."Task ""Notes""" WHERE task_id = ANY($1::uuid[])', [ada.taskIds]), 0);
    assert.equal(await count('SELECT count(*)::int AS n FROM task_shares', []), 0, 'both shares involved Ada');
    assert.equal(await count('SELECT count(*)::int AS n FROM deletion_approvals WHERE request_id = $1', [ada.requestId]), 0);

    assert.deepEqual(await directRowCounts(pool(), bob.id), bobBefore, "Bob's rows are untouched");
    assert.equal(await count('SELECT count(*)::int AS n FROM gdpr_test_devices WHERE owner = $1', [bob.id]), 1);

    assert.equal(record.tables['public.tasks'], 2);
    assert.equal(record.tables['public.gdpr_test_device_tokens'], 1);
    assert.equal(record.tables['Extra Data.Task "Notes"'], 1);
    assert.equal(record.tables['public.task_shares'], 2);
    assert.equal(record.tables['public.users'], 1);
    const salt = (await pool().query<{ salt: Buffer }>('SELECT salt FROM erasure_ledger_salt')).rows[0]!.salt;
    assert.equal(record.emailHash, createHmac('sha256', salt).update(ada.email.toLowerCase()).digest('hex'));
    assert.equal(record.emailHash, await ledgerEmailHash(pool(), ada.email.toUpperCase()));
    const stored = JSON.stringify((await pool().query('SELECT * FROM erasure_ledger WHERE user_id = $1', [ada.id])).rows);
    assert.doesNotMatch(stored, new RegExp(`${ada.email.split('@')[0]}|example\\.com|milk|passport`), 'no personal data in the ledger');
    assert.deepEqual(
      (await readErasureLedger(pool(), { email: ada.email })).map((entry) => entry.id),
      [record.id],
    );

    const login = await api.request('POST', '/auth/login', { body: { email: ada.email, password: ada.password } });
    assert.equal(login.status, 401);
    assert.equal((await api.request('GET', '/me', { token: ada.token })).status, 401);
    const audit = await pool().query<{ details: Record<string, unknown> }>(
      "SELECT details FROM audit_log WHERE action = 'gdpr.erasure.completed' AND details->>'ledgerId' = $1",
      [record.id],
    );
    assert.equal(audit.rows.length, 1);
    assert.doesNotMatch(JSON.stringify(audit.rows[0]), /@/);
  });

  test('if a row of the user would survive, the erasure rolls back and changes nothing', async () => {
    const eve = await seedUser(api, { label: 'eve' });
    await addExtraRows(eve);
    // An append-only table that silently refuses deletes: the erasure must notice, not trust rowCount.
    await pool().query(`
      CREATE FUNCTION gdpr_test_keep_devices() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
      CREATE TRIGGER gdpr_test_keep_devices BEFORE DELETE ON gdpr_test_devices FOR EACH ROW EXECUTE FUNCTION gdpr_test_keep_devices();
    `);
    try {
      const before = await directRowCounts(pool(), eve.id);
      await assert.rejects(
        eraseUser(pool(), defaultUsersTable, { userId: eve.id, operator: 'carol', ticket: 'GDPR-2', reason: 'operator' }),
        (error: unknown) =>
          error instanceof ShipError &&
          error.code === 'SHIP_ERR_STEP_FAILED' &&
          /public\.gdpr_test_devices: 1/.test(error.message) &&
          /Nothing was erased/.test(error.message),
      );
      assert.deepEqual(await directRowCounts(pool(), eve.id), before);
      assert.equal(
        await count('SELECT count(*)::int AS n FROM gdpr_test_device_tokens t JOIN gdpr_test_devices d ON d.id = t.device_id WHERE d.owner = $1', [eve.id]),
        1,
      );
      assert.equal((await readErasureLedger(pool(), { userId: eve.id })).length, 0);
    } finally {
      await pool().query('DROP TRIGGER gdpr_test_keep_devices ON gdpr_test_devices; DROP FUNCTION gdpr_test_keep_devices()');
    }
  });

  test('a failing re-check inside the transaction stops the erasure before anything is deleted', async () => {
    const fay = await seedUser(api, { label: 'fay' });
    const before = await directRowCounts(pool(), fay.id);
    await assert.rejects(
      eraseUser(pool(), defaultUsersTable, {
        userId: fay.id,
        operator: 'carol',
        ticket: 'GDPR-3',
        reason: 'operator',
        recheck: async () => {
          throw new ShipError('SHIP_ERR_PREREQUISITE_FAILED', 'The deletion request was cancelled meanwhile.');
        },
      }),
      /cancelled meanwhile/,
    );
    assert.deepEqual(await directRowCounts(pool(), fay.id), before);
  });
});
