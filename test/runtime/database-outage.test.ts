/**
 * While PostgreSQL is down, `shipshape serve` (with its workers) stays up and tells clients the
 * truth: app routes answer 503 SHIP_ERR_DATABASE_UNAVAILABLE with Retry-After — never a 500 —
 * `/health` says degraded, `/config` still answers from memory; when the server is back, requests
 * succeed again without anyone restarting anything. The database is a throwaway cluster this
 * file stops and starts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ADMIN_TOKEN } from '../helpers/api.ts';
import { startServeProcess } from '../helpers/cli.ts';
import { createStateDir } from '../helpers/postgres.ts';
import { clusterUnavailable, startThrowawayCluster, type ThrowawayCluster } from '../helpers/throwaway-cluster.ts';
import { eventually } from '../helpers/patience.ts';
import { call } from '../helpers/http-call.ts';

type Serve = Awaited<ReturnType<typeof startServeProcess>>;

describe('serve while its PostgreSQL server is down', { skip: clusterUnavailable() }, () => {
  let cluster: ThrowawayCluster;
  let state: Awaited<ReturnType<typeof createStateDir>>;
  let serve: Serve;
  let exited: number | null | undefined;
  const user = { email: `outage-${randomUUID()}@example.com`, password: 'correct horse battery' };
  let token: string;

  before(async () => {
    cluster = await startThrowawayCluster();
    const url = await cluster.createDatabase('outage');
    state = await createStateDir();
    serve = await startServeProcess({ DATABASE_URL: url, PORT: '0', STATE_DIR: state.path, ADMIN_TOKEN, SCHEDULER_POLL_MS: '250' }, ['--migrate']);
    serve.child.on('exit', (code) => (exited = code));
    const registered = await call(serve.url, 'POST', '/auth/register', { body: user });
    assert.equal(registered.status, 201);
    token = registered.json.token;
  });

  after(async () => {
    if (serve && exited === undefined) await serve.stop();
    await cluster?.stop();
    await state?.cleanup();
  });

  function until<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
    return eventually(what, async () => {
      if (exited !== undefined) throw new Error(`serve exited (${exited}) while waiting for ${what}:\n${serve.output().slice(-4_000)}`);
      return check();
    });
  }

  test('app routes answer 503 SHIP_ERR_DATABASE_UNAVAILABLE with Retry-After while the server is stopped, /health says degraded, /config answers', async () => {
    assert.equal((await call(serve.url, 'POST', '/tasks', { body: { title: 'before' }, token })).status, 201);
    await cluster.halt();

    const requests: Array<[string, string, { body?: unknown; token?: string }]> = [
      ['GET', '/tasks', { token }],
      ['POST', '/tasks', { body: { title: 'during' }, token }],
      ['POST', '/auth/login', { body: user }],
      ['GET', '/me/preferences', { token }],
    ];
    for (const [method, path, options] of requests) {
      const reply = await call(serve.url, method, path, options);
      assert.equal(reply.status, 503, `${method} ${path}: ${JSON.stringify(reply.json)}`);
      assert.equal(reply.json.error?.code, 'SHIP_ERR_DATABASE_UNAVAILABLE', `${method} ${path}`);
      assert.match(reply.json.error.message, /cannot reach its database.*Retry in \d+ seconds/);
      assert.match(reply.headers.get('retry-after') ?? '', /^\d+$/, `${method} ${path} says when to retry`);
    }
    const health = await call(serve.url, 'GET', '/health');
    assert.equal(health.status, 503);
    assert.equal(health.json.status, 'degraded');
    assert.equal(health.json.db, 'unreachable');
    const config = await call(serve.url, 'GET', '/config');
    assert.equal(config.status, 200, 'the app still learns the last known state');
    assert.equal(exited, undefined);
  });

  test('once the server is back, requests succeed again by themselves and /health is ok', async () => {
    await cluster.resume();
    const startedAt = Date.now();
    await until('a write to succeed again', async () =>
      (await call(serve.url, 'POST', '/tasks', { body: { title: 'after' }, token })).status === 201 ? true : undefined,
    );
    console.log(`requests succeeded again ${Date.now() - startedAt} ms after PostgreSQL was started`);
    const listed = await call(serve.url, 'GET', '/tasks', { token });
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.json.tasks.map((task: Record<string, any>) => task.title).sort(), ['after', 'before']);
    await until('/health to be ok', async () => ((await call(serve.url, 'GET', '/health')).status === 200 ? true : undefined));
    assert.equal((await call(serve.url, 'POST', '/auth/login', { body: user })).status, 200);
  });

  test('the instance survived the outage and stops cleanly', async () => {
    assert.equal(exited, undefined);
    assert.equal(await serve.stop(), 0);
  });
});
