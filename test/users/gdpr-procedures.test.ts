/**
 * The user procedures through the operations engine, on real PostgreSQL, a real SMTP peer and
 * s3rver as legal storage: password reset by an operator; deletion request → export → approval
 * → erasure, where every failing prerequisite stops the run with exit 3 and changes nothing;
 * and the scheduled sweep, which applies the same checks.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { approveDeletion, findPendingDeletion } from '../../src/domain/deletion-requests.ts';
import { defaultUsersTable, remainingUserRows } from '../../src/domain/erasure.ts';
import { readErasureLedger, ledgerMirrorKey } from '../../src/domain/erasure-ledger.ts';
import { openLegalStore } from '../../src/domain/legal-store.ts';
import type { RunReport } from '../../src/ops/engine/index.ts';
import type { Procedure } from '../../src/ops/engine/types.ts';
import { userDelete } from '../../src/ops/procedures/user-delete.ts';
import { userExport } from '../../src/ops/procedures/user-export.ts';
import { userPurgeDue } from '../../src/ops/procedures/user-purge-due.ts';
import { userRequestDeletion } from '../../src/ops/procedures/user-request-deletion.ts';
import { userResetPassword } from '../../src/ops/procedures/user-reset-password.ts';
import { signUp } from '../helpers/api.ts';
import { directRowCounts, startUserProcedureWorld, type UserProcedureWorld } from '../helpers/users.ts';

describe('user procedures', () => {
  let world: UserProcedureWorld;
  before(async () => {
    world = await startUserProcedureWorld();
  });
  after(() => world.close());

  const api = () => world.api;
  const smtp = () => world.smtp;
  const configAs = (operator: string) => world.configAs(operator);
  const run = (procedure: Procedure, input: Record<string, unknown>, operator: string) => world.run(procedure, input, operator);
  const pool = () => world.api.server.database.pool;
  const failedChecks = (report: RunReport) => report.prerequisites.filter((check) => !check.ok).map((check) => check.name);

  async function userWithData() {
    const user = await signUp(api());
    await api().request('POST', '/tasks', { token: user.token, body: { title: 'Renew passport' } });
    await api().request('PUT', '/me/preferences', { token: user.token, body: { theme: 'light' } });
    return user;
  }

  test('user reset-password emails a working link; verification sees the accepted message and the token', async () => {
    const user = await userWithData();
    const report = await run(userResetPassword, { email: user.email.toUpperCase(), ticket: 'SUP-1' }, 'alice');
    assert.equal(report.exitCode, 0, JSON.stringify(report.error));
    assert.deepEqual(
      report.verification.map((check) => check.ok),
      [true, true],
    );
    const mail = await smtp().waitForMessage((m) => m.to.includes(user.email));
    const token = decodeURIComponent(/token=([^\s"&]+)/.exec(mail.text ?? '')![1]!);
    assert.equal((await api().request('POST', '/auth/password-reset/confirm', { body: { token, password: 'chosen by the user' } })).status, 204);
    assert.equal((await api().request('POST', '/auth/login', { body: { email: user.email, password: 'chosen by the user' } })).status, 200);

    const unknown = await run(userResetPassword, { email: `nobody-${Date.now()}@example.com` }, 'alice');
    assert.equal(unknown.exitCode, 3);
    assert.match(unknown.prerequisites[0]!.detail, /no account has the email/);
  });

  test('user delete refuses (exit 3, nothing changed) until every prerequisite really holds, then erases everything', async () => {
    const user = await userWithData();
    const ticket = 'GDPR-42';
    const attempt = async (options: { operator?: string; ticket?: string; skipGrace?: boolean } = {}) => {
      const before = await directRowCounts(pool(), user.id);
      const report = await run(
        userDelete,
        { email: user.email, ticket: options.ticket ?? ticket, skipGrace: options.skipGrace ?? false },
        options.operator ?? 'carol',
      );
      if (report.exitCode === 3) assert.deepEqual(await directRowCounts(pool(), user.id), before, 'a refused run changes nothing');
      return report;
    };

    const noRequest = await attempt();
    assert.equal(noRequest.exitCode, 3);
    assert.equal(noRequest.error?.code, 'SHIP_ERR_PREREQUISITE_FAILED');
    assert.deepEqual(failedChecks(noRequest), [
      'deletion request on record',
      'identity verification reference present',
      'legal approval recorded by a different operator',
      'grace period passed',
      'verified export archive exists',
    ]);
    assert.ok(
      noRequest.steps.every((step) => step.status !== 'done'),
      'no step ran',
    );

    const requested = await run(userRequestDeletion, { email: user.email, ticket, identityRef: 'passport checked on video call' }, 'alice');
    assert.equal(requested.exitCode, 0, JSON.stringify(requested.error));
    assert.equal((await api().request('POST', '/auth/login', { body: { email: user.email, password: user.password } })).status, 403);
    assert.equal((await run(userRequestDeletion, { email: user.email, ticket, identityRef: 'again' }, 'alice')).exitCode, 3, 'one pending request at a time');
    const request = (await findPendingDeletion(pool(), user.id))!;

    await pool().query('UPDATE deletion_requests SET identity_reference = NULL WHERE id = $1', [request.id]);
    assert.deepEqual(failedChecks(await attempt()), [
      'identity verification reference present',
      'legal approval recorded by a different operator',
      'grace period passed',
      'verified export archive exists',
    ]);
    await pool().query("UPDATE deletion_requests SET identity_reference = 'passport checked on video call' WHERE id = $1", [request.id]);

    await approveDeletion(pool(), { requestId: request.id, userId: user.id, kind: 'legal', ticket, approvedBy: 'carol' });
    await approveDeletion(pool(), { requestId: request.id, userId: user.id, kind: 'legal', ticket: 'OTHER-1', approvedBy: 'bob' });
    const ownApproval = await attempt();
    assert.ok(
      failedChecks(ownApproval).includes('legal approval recorded by a different operator'),
      'carol cannot approve her own erasure, nor bob another ticket',
    );
    await approveDeletion(pool(), { requestId: request.id, userId: user.id, kind: 'legal', ticket, approvedBy: 'bob' });
    assert.deepEqual(failedChecks(await attempt()), ['grace period passed', 'verified export archive exists']);

    const skipWithout = await attempt({ skipGrace: true });
    assert.deepEqual(failedChecks(skipWithout), ['grace period passed', 'verified export archive exists']);
    assert.match(skipWithout.prerequisites.find((c) => c.name === 'grace period passed')!.detail, /second approval/);
    await approveDeletion(pool(), { requestId: request.id, userId: user.id, kind: 'skip-grace', ticket, approvedBy: 'dana' });
    assert.deepEqual(failedChecks(await attempt({ skipGrace: true })), ['verified export archive exists']);

    const exported = await run(userExport, { email: user.email, ticket }, 'alice');
    assert.equal(exported.exitCode, 0, JSON.stringify(exported.error));
    const archiveKey = String(exported.steps[0]!.output?.archiveKey);
    const store = openLegalStore(configAs('test'));
    try {
      const original = await store.getBuffer(archiveKey);
      await store.putBuffer(archiveKey, Buffer.concat([original, Buffer.from('tampered')]));
      const tampered = await attempt({ skipGrace: true });
      assert.deepEqual(failedChecks(tampered), ['verified export archive exists']);
      assert.match(tampered.prerequisites.find((c) => c.name === 'verified export archive exists')!.detail, /no longer verifies/);
      await store.putBuffer(archiveKey, original);

      const done = await attempt({ skipGrace: true });
      assert.equal(done.exitCode, 0, JSON.stringify(done.error));
      assert.equal(done.state, 'succeeded');
      assert.deepEqual(
        done.verification.map((check) => [check.name, check.ok]),
        [
          ['no row of the user remains in any table', true],
          ['login now fails for the address', true],
          ['the erasure ledger holds the record, mirrored in legal storage', true],
        ],
      );
      assert.deepEqual(await remainingUserRows(pool(), defaultUsersTable, user.id), {});
      assert.equal((await api().request('POST', '/auth/login', { body: { email: user.email, password: user.password } })).status, 401);
      const [record] = await readErasureLedger(pool(), { userId: user.id });
      assert.equal(record?.ticket, ticket);
      assert.equal(record?.operator, 'carol');
      assert.equal(record?.exportKey, archiveKey);
      assert.ok(await store.head(ledgerMirrorKey(record!)), 'the ledger record is mirrored in legal storage');
      assert.ok(await store.head(archiveKey), 'the export archive stays in legal storage for the records');
      const confirmation = await smtp().waitForMessage((m) => m.to.includes(user.email) && /deleted/.test(m.subject));
      assert.match(confirmation.text ?? '', /GDPR-42/);
    } finally {
      store.close();
    }
  });

  test('user purge-due erases due requests that pass the same checks and skips the others', async () => {
    const ready = await userWithData();
    const unapproved = await userWithData();
    for (const user of [ready, unapproved]) {
      assert.equal(
        (await run(userRequestDeletion, { email: user.email, ticket: `T-${user.id.slice(0, 8)}`, identityRef: 'email from the account address' }, 'alice'))
          .exitCode,
        0,
      );
      await pool().query("UPDATE deletion_requests SET requested_at = now() - interval '31 days', due_at = now() - interval '1 day' WHERE user_id = $1", [
        user.id,
      ]);
      assert.equal((await run(userExport, { email: user.email }, 'alice')).exitCode, 0);
    }
    const request = (await findPendingDeletion(pool(), ready.id))!;
    await approveDeletion(pool(), { requestId: request.id, userId: ready.id, kind: 'legal', ticket: 'T-ready', approvedBy: 'bob' });

    const report = await run(userPurgeDue, {}, 'scheduler');
    assert.equal(report.exitCode, 0, JSON.stringify(report.error));
    const output = report.steps[0]!.output!;
    assert.equal(Array.isArray(output.erased) && output.erased.length, 1);
    assert.deepEqual(await remainingUserRows(pool(), defaultUsersTable, ready.id), {});
    assert.equal((await readErasureLedger(pool(), { userId: ready.id }))[0]?.ticket, 'T-ready');
    assert.equal((await directRowCounts(pool(), unapproved.id)).users, 1, 'no legal approval: skipped, not erased');
    assert.match(JSON.stringify(output.skipped), /legal approval recorded by a different operator/);
    assert.ok(await findPendingDeletion(pool(), unapproved.id));
  });
});
