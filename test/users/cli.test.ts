/**
 * The user and audit commands as an operator types them (real CLI in a child process): exit
 * codes, the two-operator rule for legal approval, session control and the audit trail.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { signUp, startTestApi, type TestApi } from '../helpers/api.ts';

describe('shipshape user / audit commands', () => {
  let api: TestApi;
  let folder: string;
  before(async () => {
    api = await startTestApi();
    folder = await mkdtemp(path.join(tmpdir(), 'shipshape-user-cli-'));
  });
  after(async () => {
    await api.close();
    await rm(folder, { recursive: true, force: true });
  });

  const as = (operator: string) => ({
    DATABASE_URL: api.config.databaseUrl ?? '',
    STATE_DIR: path.join(folder, 'state'),
    LEGAL_STORAGE_URL: pathToFileURL(path.join(folder, 'legal')).href,
    SHIPSHAPE_OPERATOR: operator,
    LOG_LEVEL: 'silent',
  });

  test('deletion request, self-approval refused, delete refused with exit 3, approval by another operator, cancel', async () => {
    const user = await signUp(api);
    const requested = await runCli(
      ['user', 'request-deletion', user.email, '--ticket', 'GDPR-7', '--identity-ref', 'replied from the account address', '--json'],
      as('alice'),
    );
    assert.equal(requested.code, 0, requested.stderr);
    assert.equal(JSON.parse(requested.stdout).state, 'succeeded');

    const selfApproved = await runCli(['user', 'approve-deletion', user.email, '--ticket', 'GDPR-7'], as('alice'));
    assert.equal(selfApproved.code, 2);
    assert.match(selfApproved.stderr, /SHIP_ERR_SELF_APPROVAL.*different operator/);

    const refused = await runCli(['user', 'delete', user.email, '--ticket', 'GDPR-7', '--yes', '--yes-irreversible', '--json'], as('carol'));
    assert.equal(refused.code, 3, refused.stderr);
    const report = JSON.parse(refused.stdout);
    assert.equal(report.error.code, 'SHIP_ERR_PREREQUISITE_FAILED');
    assert.deepEqual(
      report.prerequisites.filter((check: { ok: boolean }) => !check.ok).map((check: { name: string }) => check.name),
      ['legal approval recorded by a different operator', 'grace period passed', 'verified export archive exists'],
    );

    const approved = await runCli(['user', 'approve-deletion', user.email, '--ticket', 'GDPR-7'], as('bob'));
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /Recorded legal approval by bob for ticket GDPR-7/);

    const audit = await runCli(['audit', '--user', user.email, '--action', 'gdpr.', '--json'], as('carol'));
    assert.equal(audit.code, 0, audit.stderr);
    const entries = JSON.parse(audit.stdout).entries as Array<{ action: string; actor: string }>;
    assert.deepEqual(
      entries.map((entry) => [entry.action, entry.actor]),
      [
        ['gdpr.deletion.approved', 'operator:bob'],
        ['gdpr.deletion.requested', 'operator:alice'],
      ],
    );

    const cancelled = await runCli(['user', 'cancel-deletion', user.email], as('carol'));
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.equal((await api.request('POST', '/auth/login', { body: { email: user.email, password: user.password } })).status, 200);
  });

  test('user sessions lists live sessions and revoke-sessions ends them; an unknown email is a usage error', async () => {
    const user = await signUp(api);
    const listed = await runCli(['user', 'sessions', user.email, '--json'], as('alice'));
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(JSON.parse(listed.stdout).sessions.length, 1);

    const revoked = await runCli(['user', 'revoke-sessions', user.email], as('alice'));
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /Ended 1 session/);
    assert.equal((await api.request('GET', '/me', { token: user.token })).status, 401);

    const unknown = await runCli(['user', 'sessions', 'nobody@example.com'], as('alice'));
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /No account has the email nobody@example.com/);
  });
});
