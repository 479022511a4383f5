/**
 * Rotating the application role's database password, on a throwaway role of the test server:
 * the SCRAM verifier we compute is the one PostgreSQL computes itself, the role ends up with
 * the new password, the new connection string is written where configured (mode 0600) and the
 * old one is kept beside it; a role name that needs quoting is quoted by the server.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { rotateDatabasePassword, scramSha256Verifier } from '../../src/ops/maintenance/database-password.ts';
import { ADMIN_URL, createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const storedPassword = (role: string) =>
  admin(
    async (client) => (await client.query<{ rolpassword: string }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role])).rows[0]?.rolpassword ?? '',
  );

describe('database role password rotation', () => {
  // A name that must be quoted: a quote and a space, so string-built SQL would break.
  const role = `shipshape test "${randomBytes(3).toString('hex')}" app`;
  const oldPassword = `old'pw ${randomBytes(4).toString('hex')}`;
  let database: TestDatabase;
  let state: { path: string; cleanup(): Promise<void> };

  before(async () => {
    database = await createTestDatabase();
    state = await createStateDir();
    await admin(async (client) => {
      const { rows } = await client.query<{ sql: string }>("SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text) AS sql", [role, oldPassword]);
      await client.query(rows[0]!.sql);
    });
  });
  after(async () => {
    await database?.drop();
    await admin(async (client) => {
      const { rows } = await client.query<{ sql: string }>("SELECT format('DROP ROLE IF EXISTS %I', $1::text) AS sql", [role]);
      await client.query(rows[0]!.sql);
    });
    await state?.cleanup();
  });

  test('our SCRAM-SHA-256 verifier is exactly what PostgreSQL stores for the same password and salt', async () => {
    const stored = await storedPassword(role);
    const match = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored);
    assert.ok(match, `PostgreSQL stored a SCRAM verifier (${stored.slice(0, 14)}…)`);
    assert.equal(scramSha256Verifier(oldPassword, Buffer.from(match[2]!, 'base64'), Number(match[1])), stored);
  });

  test('the role gets the new password, the new DATABASE_URL is written privately, and the old one is kept', async () => {
    const url = new URL(database.url);
    url.username = encodeURIComponent(role);
    url.password = encodeURIComponent(oldPassword);
    const urlFile = path.join(state.path, 'database-url');
    await writeFile(urlFile, `${url.toString()}\n`);

    const result = await rotateDatabasePassword({ currentUrl: url.toString(), urlFile });
    assert.equal(result.role, role);
    assert.equal(result.previousFile, `${urlFile}.previous`);
    assert.doesNotMatch(result.shownUrl, new RegExp(encodeURIComponent(oldPassword).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));

    const written = new URL((await readFile(urlFile, 'utf8')).trim());
    assert.equal(decodeURIComponent(written.username), role);
    const newPassword = decodeURIComponent(written.password);
    assert.notEqual(newPassword, oldPassword);
    assert.equal(((await stat(urlFile)).mode & 0o777).toString(8), '600');
    assert.equal((await readFile(`${urlFile}.previous`, 'utf8')).trim(), url.toString(), 'the old connection string is kept');
    assert.equal(((await stat(`${urlFile}.previous`)).mode & 0o777).toString(8), '600');
    await assert.rejects(stat(`${urlFile}.new`), /ENOENT/);

    const stored = await storedPassword(role);
    const match = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored)!;
    assert.equal(scramSha256Verifier(newPassword, Buffer.from(match[2]!, 'base64'), Number(match[1])), stored, 'the role now has the new password');
    assert.notEqual(scramSha256Verifier(oldPassword, Buffer.from(match[2]!, 'base64'), Number(match[1])), stored, 'and no longer the old one');

    const client = new pg.Client({ connectionString: written.toString() });
    await client.connect();
    assert.equal((await client.query<{ user: string }>('SELECT current_user AS user')).rows[0]?.user, role);
    await client.end();
  });

  test('a connection string without a password is refused before anything changes', async () => {
    const url = new URL(database.url);
    url.username = encodeURIComponent(role);
    url.password = '';
    const before = await storedPassword(role);
    await assert.rejects(rotateDatabasePassword({ currentUrl: url.toString(), urlFile: path.join(state.path, 'unused') }), /no user and password/);
    assert.equal(await storedPassword(role), before);
  });
});
