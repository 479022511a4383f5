/**
 * The `shipshape` command as an operator meets it: help, exit codes, configuration
 * errors, migrations from the command line, and the server's life cycle.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCli, startServeProcess } from '../helpers/cli.ts';
import { createStateDir, createTestDatabase } from '../helpers/postgres.ts';

describe('shipshape CLI', () => {
  test('--help lists the commands and exits 0', async () => {
    const result = await runCli(['--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /serve/);
    assert.match(result.stdout, /db/);
  });

  test('an unknown command is a usage error, exit 2', async () => {
    const result = await runCli(['frobnicate']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /unknown command/);
  });

  test('a bad configuration value stops with exit 2 and one line naming the variable', async () => {
    const result = await runCli(['db', 'migrate', 'status'], { PORT: 'eighty' });
    assert.equal(result.code, 2);
    assert.equal(result.stderr.trim().split('\n').length, 1);
    assert.match(result.stderr, /^error\[SHIP_ERR_CONFIG\]: PORT="eighty" is invalid: .* Example of a good value: PORT=3000/);
  });

  test('db migrate status/up/down on PostgreSQL, with --json on stdout', async () => {
    const database = await createTestDatabase();
    const state = await createStateDir();
    const env = { DATABASE_URL: database.url, STATE_DIR: state.path };
    try {
      const before = await runCli(['db', 'migrate', 'status', '--json'], env);
      assert.equal(before.code, 0, before.stderr);
      const pending = JSON.parse(before.stdout).migrations;
      assert.ok(pending.length >= 1);
      assert.ok(pending.every((row: { state: string }) => row.state === 'pending'));

      const plan = await runCli(['db', 'migrate', 'plan', '--json'], env);
      assert.equal(plan.code, 0, plan.stderr);
      assert.ok(JSON.parse(plan.stdout).changes.some((c: { name: string }) => c.name === 'public.users'));

      // `up` is the runbook procedure: it needs confirmation and a verified backup (--backup takes one).
      const up = await runCli(['db', 'migrate', 'up', '--json', '--yes', '--backup'], env);
      assert.equal(up.code, 0, up.stderr);
      assert.equal(JSON.parse(up.stdout).state, 'succeeded');

      const down = await runCli(['db', 'migrate', 'down', '--to', 'zero'], env);
      assert.equal(down.code, 2, 'a non-numeric version is a usage error');
    } finally {
      await database.drop();
      await state.cleanup();
    }
  });

  test('serve refuses a PostgreSQL database with pending migrations unless --migrate', async () => {
    const database = await createTestDatabase();
    const state = await createStateDir();
    const env = { DATABASE_URL: database.url, STATE_DIR: state.path, PORT: '0' };
    try {
      const refused = await runCli(['serve'], env);
      assert.equal(refused.code, 3);
      assert.match(refused.stderr, /SHIP_ERR_MIGRATIONS_PENDING.*shipshape db migrate up/);
      const server = await startServeProcess(env, ['--migrate']);
      const health = await fetch(`${server.url}/health`);
      assert.equal(health.status, 200);
      assert.equal(await server.stop(), 0);
    } finally {
      await database.drop();
      await state.cleanup();
    }
  });

  test('embedded: data survives a restart, SIGTERM stops cleanly, and a CLI command joins the running server', async () => {
    const state = await createStateDir();
    const env = { STATE_DIR: state.path, PORT: '0' };
    try {
      const first = await startServeProcess(env);
      const register = await fetch(`${first.url}/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'persist@example.com', password: 'correct horse battery' }),
      });
      assert.equal(register.status, 201);
      const status = await runCli(['db', 'migrate', 'status', '--json'], env);
      assert.equal(status.code, 0, status.stderr);
      assert.ok(JSON.parse(status.stdout).migrations.every((row: { state: string }) => row.state === 'applied'));
      assert.equal(await first.stop('SIGTERM'), 0);
      assert.match(first.output(), /SIGTERM received/);

      const second = await startServeProcess(env);
      const login = await fetch(`${second.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'persist@example.com', password: 'correct horse battery' }),
      });
      assert.equal(login.status, 200);
      assert.equal(await second.stop('SIGINT'), 0);
    } finally {
      await state.cleanup();
    }
  });
});
