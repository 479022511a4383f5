/**
 * PostgreSQL refusing connections and terminating sessions under a running `shipshape serve`
 * with light traffic. The database sits behind a loopback proxy (test/fakes/tcp-proxy.ts) the
 * test cuts, so the shared server keeps running for every other test. Expected: while the
 * database is unreachable app routes answer 503 SHIP_ERR_DATABASE_UNAVAILABLE with Retry-After
 * (never 500 SHIP_ERR_INTERNAL), requests succeed again by themselves once it is back, no write
 * the server acknowledged is lost, and serve still stops on SIGTERM.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { startTcpProxy, type TcpProxy } from '../fakes/tcp-proxy.ts';
import { eventually } from '../helpers/patience.ts';
import { startFaultDeployment, startTraffic, type FaultDeployment } from '../helpers/traffic.ts';

describe('serve while PostgreSQL refuses connections or terminates sessions', () => {
  let deployment: FaultDeployment;
  let proxy: TcpProxy;

  before(async () => {
    deployment = await startFaultDeployment(async (database) => {
      const direct = new URL(database.url);
      proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
      const proxied = new URL(database.url);
      proxied.host = `127.0.0.1:${proxy.port}`;
      return { DATABASE_URL: proxied.toString(), SCHEDULER_POLL_MS: '500' };
    });
  });

  after(() => deployment?.close(() => proxy?.close()) ?? proxy?.close());

  test('refused, then terminated: 503 with Retry-After while unreachable, recovery by itself, nothing acknowledged lost', async () => {
    const { serve, users, alive, database } = deployment;
    const traffic = startTraffic(serve.url, users, { exited: () => !alive() });
    try {
      await traffic.progress('traffic with the database up');

      proxy.setMode('refuse');
      await eventually('requests to fail while the database refuses connections', () => (traffic.counts.failures >= 4 ? true : undefined));
      proxy.setMode('pass');
      await traffic.progress('traffic after the database is back');

      // Sessions terminated mid-traffic, twice (a restart or pg_terminate_backend).
      for (let round = 0; round < 2; round++) {
        proxy.cut();
        await traffic.progress(`traffic after sessions were cut (${round + 1})`);
      }
    } finally {
      await traffic.stop();
    }
    console.log(`database faults: ${traffic.counts.rounds} rounds, ${traffic.counts.failures} failed ${JSON.stringify([...traffic.counts.failuresByKind])}`);
    for (const [failure, count] of traffic.counts.failuresByKind) {
      assert.match(failure, /: 503 SHIP_ERR_DATABASE_UNAVAILABLE retry-after$/, `${count} × ${failure}`);
    }

    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const ids = traffic.acknowledged.map((t) => t.id);
      const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks WHERE id = ANY($1::uuid[])', [ids]);
      assert.equal(rows[0]!.n, ids.length, 'every task the server acknowledged is stored');
    } finally {
      await client.end();
    }
  });

  test('serve stops on SIGTERM while the database refuses connections', async () => {
    const { serve } = deployment;
    proxy.setMode('refuse');
    assert.equal(await serve.stop('SIGTERM'), 0, serve.output().slice(-3_000));
  });
});
