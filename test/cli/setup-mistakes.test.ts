/**
 * Setup mistakes an operator makes on day one — a database that does not exist, a server that
 * is not running, a role that does not exist, a port already taken, a schema never migrated,
 * STATE_DIR pointing at a file, a DATABASE_URL that is not a URL — each stop the real CLI with one line that names the
 * cause and the fix, and exit 3 (2 for a malformed setting), never "internal error" and a stack
 * trace; the password in DATABASE_URL is never printed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { ADMIN_URL, createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';

const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;
/** Commands that open the database: the server, the worker, a plain command, a diagnostic, a procedure. */
const SERVE = ['serve'];
const WORKER = ['worker'];
const MIGRATE_STATUS = ['db', 'migrate', 'status'];
const DIAGNOSE = ['db', 'diagnose'];
const PROCEDURE = ['db', 'migrate', 'up', '--yes'];

function urlWith(change: (url: URL) => void): string {
  const url = new URL(ADMIN_URL);
  url.password = PASSWORD;
  change(url);
  return url.toString();
}

/** One line `error[CODE]: …` naming the cause and the fix; no stack trace, no "internal error", no password. */
function assertOneLine(result: CliResult, code: string, message: RegExp, what: string): void {
  const output = `${result.stdout}\n${result.stderr}`;
  assert.doesNotMatch(output, /internal error/, what);
  assert.doesNotMatch(output, /^\s+at /m, `${what}: no stack trace`);
  assert.ok(!output.includes(PASSWORD), `${what}: the password must not be printed`);
  const errors = result.stderr.split('\n').filter((line) => line.startsWith('error['));
  assert.equal(errors.length, 1, `${what}: one error line\n${result.stderr}`);
  assert.match(errors[0]!, new RegExp(`^error\\[${code}\\]: `), what);
  assert.match(errors[0]!, message, what);
}

/** A procedure reports through its run report: each failed prerequisite names the cause and fix. */
function assertExplained(result: CliResult, args: readonly string[], code: string, message: RegExp): void {
  const what = `shipshape ${args.join(' ')}`;
  assert.equal(result.code, 3, `${what}: exit 3\n${result.stdout}\n${result.stderr}`);
  if (args === PROCEDURE) {
    const output = `${result.stdout}\n${result.stderr}`;
    assert.doesNotMatch(output, /internal error/, what);
    assert.ok(!output.includes(PASSWORD), `${what}: the password must not be printed`);
    assert.match(output, message, what);
    return;
  }
  assertOneLine(result, code, message, what);
}

describe('setup mistakes stop the CLI with one line and exit 3', () => {
  let state: Awaited<ReturnType<typeof createStateDir>>;
  const env = (extra: Record<string, string>) => ({ STATE_DIR: state.path, PORT: '0', ...extra });

  before(async () => {
    state = await createStateDir();
  });
  after(async () => {
    await state.cleanup();
  });

  test('a database that does not exist: SHIP_ERR_DATABASE_MISSING says how to create it', async () => {
    const name = `shipshape_missing_${randomBytes(4).toString('hex')}`;
    const url = urlWith((u) => (u.pathname = `/${name}`));
    for (const args of [SERVE, WORKER, MIGRATE_STATUS, PROCEDURE]) {
      const result = await runCli(args, env({ DATABASE_URL: url }));
      assertExplained(
        result,
        args,
        'SHIP_ERR_DATABASE_MISSING',
        new RegExp(`Database "${name}" does not exist on 127\\.0\\.0\\.1:\\d+\\. Create it: createdb -h 127\\.0\\.0\\.1 -p \\d+ -U postgres ${name}`),
      );
    }
  });

  test('a server that is not running: SHIP_ERR_DATABASE_UNREACHABLE names the address and says to start it', async () => {
    const port = await closedPort();
    const url = urlWith((u) => (u.port = String(port)));
    for (const args of [SERVE, DIAGNOSE, PROCEDURE]) {
      const result = await runCli(args, env({ DATABASE_URL: url }));
      assertExplained(
        result,
        args,
        'SHIP_ERR_DATABASE_UNREACHABLE',
        new RegExp(`Nothing accepts connections at 127\\.0\\.0\\.1:${port}: PostgreSQL is not running there.*Start it`),
      );
    }
  });

  test('a role that does not exist: SHIP_ERR_DATABASE_AUTH says how to create it', async () => {
    const role = `nobody_${randomBytes(4).toString('hex')}`;
    const url = urlWith((u) => (u.username = role));
    for (const args of [WORKER]) {
      const result = await runCli(args, env({ DATABASE_URL: url }));
      assertExplained(
        result,
        args,
        'SHIP_ERR_DATABASE_AUTH',
        new RegExp(`Role "${role}" does not exist on 127\\.0\\.0\\.1:\\d+\\. Create it: createuser .* ${role}`),
      );
    }
  });

  describe('a port already in use', () => {
    let database: TestDatabase;
    let holder: Server;
    let port: number;
    before(async () => {
      database = await createTestDatabase();
      holder = createServer();
      port = await new Promise<number>((resolve) => holder.listen(0, '127.0.0.1', () => resolve((holder.address() as { port: number }).port)));
    });
    after(async () => {
      await new Promise((resolve) => holder.close(resolve));
      await database.drop();
    });

    test('serve stops with SHIP_ERR_PORT_IN_USE before it changes anything', async () => {
      const result = await runCli(['serve', '--migrate'], { STATE_DIR: state.path, PORT: String(port), DATABASE_URL: database.url });
      assert.equal(result.code, 3, result.stderr);
      assertOneLine(result, 'SHIP_ERR_PORT_IN_USE', new RegExp(`Port ${port} on 127\\.0\\.0\\.1 is already in use.*set PORT to a free port`), 'serve');
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      try {
        const { rows } = await client.query<{ table: string | null }>("SELECT to_regclass('shipshape.schema_migrations')::text AS table");
        assert.equal(rows[0]?.table, null, 'no migration ran');
      } finally {
        await client.end();
      }
    });
  });

  test('a database whose schema was never migrated: SHIP_ERR_MIGRATIONS_PENDING says to run the migrations', async () => {
    const database = await createTestDatabase();
    try {
      const result = await runCli(['schedule', 'list'], env({ DATABASE_URL: database.url }));
      assert.equal(result.code, 3, result.stderr);
      assertOneLine(
        result,
        'SHIP_ERR_MIGRATIONS_PENDING',
        /relation "schedules" does not exist.*Run `shipshape db migrate status`, then `shipshape db migrate up`/,
        'schedule list',
      );
    } finally {
      await database.drop();
    }
  });

  test('STATE_DIR naming a file: SHIP_ERR_FILE_ACCESS names the path and says what to check', async () => {
    const file = path.join(state.path, 'not-a-folder');
    await writeFile(file, 'x');
    for (const args of [SERVE, ['runs']]) {
      const result = await runCli(args, { STATE_DIR: file, PORT: '0' });
      assert.equal(result.code, 3, `${args.join(' ')}\n${result.stderr}`);
      assertOneLine(
        result,
        'SHIP_ERR_FILE_ACCESS',
        new RegExp(
          `Cannot .* ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/.*: a file is in the way where a folder should be \\(ENOTDIR\\)\\. Check STATE_DIR`,
        ),
        args.join(' '),
      );
    }
  });

  test('a DATABASE_URL that is not a URL is a configuration error (exit 2) that says what to fix, without the password', async () => {
    const result = await runCli(['db', 'migrate', 'status'], env({ DATABASE_URL: `postgres://app:${PASSWORD}@127.0.0.1:notaport/app` }));
    assert.equal(result.code, 2);
    assertOneLine(result, 'SHIP_ERR_CONFIG', /DATABASE_URL=\(hidden\) is invalid: is not a valid URL: check the host and the port/, 'bad URL');
  });
});

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  await new Promise((resolve) => server.close(resolve));
  return port;
}
