/**
 * `shipshape db kill-connections` against a live deployment: a `shipshape serve` with its
 * workers on the database. The server survives, its sessions are terminated and reported, and
 * the run verifies that the API answers again — so it can no longer report success over an API
 * it took down. With no API answering at API_URL, that check is not a ✓: it says it could not
 * be made.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ADMIN_TOKEN } from '../helpers/api.ts';
import { runCli, startServeProcess } from '../helpers/cli.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';

type Serve = Awaited<ReturnType<typeof startServeProcess>>;

interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly unverified?: boolean;
  readonly detail: string;
  readonly remedy?: string;
}

describe('db kill-connections with `shipshape serve` running', () => {
  let database: TestDatabase;
  let serveState: Awaited<ReturnType<typeof createStateDir>>;
  let cliState: Awaited<ReturnType<typeof createStateDir>>;
  let serve: Serve;
  let exited: number | null | undefined;

  before(async () => {
    database = await createTestDatabase();
    serveState = await createStateDir();
    cliState = await createStateDir();
    serve = await startServeProcess({ DATABASE_URL: database.url, PORT: '0', STATE_DIR: serveState.path, ADMIN_TOKEN, SCHEDULER_POLL_MS: '250' }, [
      '--migrate',
    ]);
    serve.child.on('exit', (code) => (exited = code));
  });

  after(async () => {
    if (serve && exited === undefined) await serve.stop();
    await database?.drop();
    await serveState?.cleanup();
    await cliState?.cleanup();
  });

  const kill = (apiUrl: string) =>
    runCli(['db', 'kill-connections', '--yes', '--yes-irreversible', '--json'], {
      DATABASE_URL: database.url,
      STATE_DIR: cliState.path,
      API_URL: apiUrl,
      SHIPSHAPE_OPERATOR: 'alice',
    });

  test('terminates the server’s sessions, the server survives, and the run verifies that the API answers again', async () => {
    const result = await kill(serve.url);
    const report = JSON.parse(result.stdout) as {
      exitCode: number;
      state: string;
      verification: Check[];
      steps: Array<{ id: string; durationMs: number | null; output?: Record<string, any> }>;
    };
    assert.equal(exited, undefined, `serve exited:\n${serve.output().slice(-4_000)}`);
    assert.equal(report.exitCode, 0, `${result.stderr}\n${JSON.stringify(report.verification, null, 2)}`);
    assert.equal(result.code, 0);

    const terminated = report.steps.find((step) => step.id === 'terminate')?.output?.disconnected as Array<Record<string, any>>;
    assert.ok(
      terminated.some((session) => session.applicationName === 'shipshape-api' && session.outcome === 'terminated'),
      'the API’s pooled sessions were terminated',
    );
    const answers = report.verification.find((check) => check.name === 'the API answers again');
    assert.equal(answers?.ok, true, JSON.stringify(answers));
    assert.match(answers?.detail ?? '', new RegExp(`${serve.url}/health answers HTTP 200 .*after the sessions were terminated`));
    const sweep = report.steps.find((step) => step.id === 'terminate');
    console.log(`kill-connections against a live serve: terminating took ${sweep?.durationMs} ms; ${answers?.detail}`);

    const health = await fetch(`${serve.url}/health`);
    assert.equal(health.status, 200);
  });

  test('with nothing answering at API_URL, the API check is reported as unverified, never as passed', async () => {
    const port = await closedPort();
    const result = await kill(`http://127.0.0.1:${port}`);
    const report = JSON.parse(result.stdout) as { exitCode: number; state: string; verification: Check[]; steps: Array<{ id: string; status: string }> };
    const answers = report.verification.find((check) => check.name === 'the API answers again');
    assert.ok(answers, JSON.stringify(report.verification));
    assert.equal(answers.ok, false, 'a check that could not be made is not a ✓');
    assert.equal(answers.unverified, true, 'the engine reports it as unverified');
    assert.match(answers.detail, new RegExp(`^nothing answered at http://127\\.0\\.0\\.1:${port}/health`));
    assert.match(answers.remedy ?? '', /API_URL/);
    // Not a failure to roll back (the termination cannot be undone anyway): the run is unverified, exit 5.
    assert.equal(report.state, 'unverified', result.stderr);
    assert.equal(report.exitCode, 5);
    assert.equal(result.code, 5);
    assert.match(result.stderr, /error\[SHIP_ERR_UNVERIFIED\]: .*could not be made/);
    assert.equal(report.steps.find((step) => step.id === 'terminate')?.status, 'done');
    assert.equal(exited, undefined);
  });
});

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  await new Promise((resolve) => server.close(resolve));
  return port;
}
