/**
 * After an erasure nothing names the person outside legal storage: a search of every file under
 * STATE_DIR and of every row of every table (the app's, the engine's mirror, the job queue's)
 * finds the address nowhere — although the person went through a password reset by the API and
 * by an operator, an export, a deletion request, refused and granted erasure attempts, and an
 * older Shipshape had journaled the address in plain text.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { approveDeletion, findPendingDeletion } from '../../src/domain/deletion-requests.ts';
import { journalPath } from '../../src/ops/engine/journal.ts';
import { newRunId } from '../../src/ops/engine/run-id.ts';
import { userDelete } from '../../src/ops/procedures/user-delete.ts';
import { userExport } from '../../src/ops/procedures/user-export.ts';
import { userRequestDeletion } from '../../src/ops/procedures/user-request-deletion.ts';
import { userResetPassword } from '../../src/ops/procedures/user-reset-password.ts';
import { signUp } from '../helpers/api.ts';
import { startUserProcedureWorld, type UserProcedureWorld } from '../helpers/users.ts';

let world: UserProcedureWorld;
before(async () => {
  world = await startUserProcedureWorld();
});
after(() => world.close());

/** Every file under `dir` (recursively) whose content names `needle`, in any letter case. */
async function filesNaming(dir: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    if ((await readFile(file)).toString('latin1').toLowerCase().includes(needle.toLowerCase())) found.push(path.relative(dir, file));
  }
  return found;
}

/** Every table of the database (all schemas but the catalogs) with a row whose text names `needle`. */
async function tablesNaming(needle: string): Promise<string[]> {
  const pool = world.api.server.database.pool;
  const { rows: tables } = await pool.query<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`,
  );
  assert.ok(tables.length > 20, 'the search covers the whole schema');
  const found: string[] = [];
  for (const { name } of tables) {
    const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${name} t WHERE t::text ILIKE $1`, [`%${needle}%`]);
    if (Number(rows[0]?.n) > 0) found.push(name);
  }
  return found;
}

test('after user delete, no file under STATE_DIR and no row of any table names the erased address', async () => {
  const { api, smtp, stateDir, run } = world;
  const user = await signUp(api);
  const email = user.email;
  const pool = api.server.database.pool;
  const ticket = 'GDPR-PRIVACY-1';

  // The person's history with the service and its operators.
  await api.request('POST', '/tasks', { token: user.token, body: { title: `call ${email} back` } });
  assert.equal((await api.request('POST', '/auth/password-reset', { body: { email: email.toUpperCase() } })).status, 202);
  await smtp.waitForMessage((m) => m.to.includes(email) && /reset/i.test(m.subject));
  assert.equal((await run(userResetPassword, { email, ticket: 'SUP-9' }, 'alice')).exitCode, 0);
  assert.equal((await run(userDelete, { email, ticket }, 'carol')).exitCode, 3, 'a refused erasure is journaled too');
  assert.equal((await run(userRequestDeletion, { email, ticket, identityRef: 'passport seen' }, 'alice')).exitCode, 0);
  const request = (await findPendingDeletion(pool, user.id))!;
  await approveDeletion(pool, { requestId: request.id, userId: user.id, kind: 'legal', ticket, approvedBy: 'bob' });
  await approveDeletion(pool, { requestId: request.id, userId: user.id, kind: 'skip-grace', ticket, approvedBy: 'dana' });
  assert.equal((await run(userExport, { email, ticket }, 'alice')).exitCode, 0);

  // An older Shipshape journaled the address in plain text.
  const legacyId = newRunId(new Date(Date.now() - 86_400_000));
  await writeFile(
    journalPath(stateDir, legacyId),
    `${JSON.stringify({ seq: 1, at: new Date().toISOString(), type: 'note', message: `exported ${email.toUpperCase()}` })}\n`,
  );

  const before = await filesNaming(stateDir, email);
  assert.ok(
    before.some((file) => file.endsWith('.personal.json')),
    'the runs kept the address in their private records',
  );
  assert.deepEqual(
    before.filter((file) => !file.endsWith('.personal.json') && !file.includes(legacyId)),
    [],
    'and nowhere else but the older journal',
  );

  const erased = await run(userDelete, { email, ticket, skipGrace: true }, 'carol');
  assert.equal(erased.exitCode, 0, JSON.stringify(erased.error));
  assert.equal(erased.steps.at(-1)?.status, 'done');

  assert.deepEqual(await filesNaming(stateDir, email), [], 'nothing under STATE_DIR names the person');
  assert.deepEqual(await tablesNaming(email), [], 'no row of any table names the person');
});
