/**
 * Redis is an accelerator, never a dependency: with REDIS_URL pointing at a Redis that does not
 * answer, `shipshape serve` still registers and signs users in (the rate limits are skipped
 * while Redis is away; the login throttle lives in the database) and does not print a stack
 * trace for every reconnect attempt.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ADMIN_TOKEN } from '../helpers/api.ts';
import { startServeProcess } from '../helpers/cli.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';

describe('serve with Redis unreachable', () => {
  let database: TestDatabase;
  let state: Awaited<ReturnType<typeof createStateDir>>;
  let serve: Awaited<ReturnType<typeof startServeProcess>>;

  before(async () => {
    database = await createTestDatabase();
    state = await createStateDir();
    const port = await closedPort();
    serve = await startServeProcess({ DATABASE_URL: database.url, PORT: '0', STATE_DIR: state.path, ADMIN_TOKEN, REDIS_URL: `redis://127.0.0.1:${port}` }, [
      '--migrate',
      '--no-workers',
    ]);
  });

  after(async () => {
    await serve?.stop();
    await database?.drop();
    await state?.cleanup();
  });

  test('rate-limited routes (register, login) answer normally instead of 500', async () => {
    const user = { email: `redis-away-${randomUUID()}@example.com`, password: 'correct horse battery' };
    const post = (path: string) =>
      fetch(`${serve.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(user) });
    const registered = await post('/auth/register');
    assert.equal(registered.status, 201, await registered.text());
    const login = await post('/auth/login');
    assert.equal(login.status, 200, await login.text());
    assert.doesNotMatch(serve.output(), /Unhandled error event/);
  });
});

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  await new Promise((resolve) => server.close(resolve));
  return port;
}
