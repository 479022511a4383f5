/**
 * Redis down, stalled and flapping under a running `shipshape serve` with light traffic (sign
 * in, create a task, list): sign-in keeps working — rate limits are counted in the process while
 * Redis does not answer (issue 11: the limiter failed closed and every sign-in answered 500) —
 * the fallback is alerted once, no acknowledged write is lost, and serve still stops on SIGTERM
 * with Redis hung. Redis sits behind a loopback proxy (test/fakes/tcp-proxy.ts) the test cuts
 * or stalls; the shared Redis itself is never touched.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { startTcpProxy, type TcpProxy } from '../fakes/tcp-proxy.ts';
import { eventually } from '../helpers/patience.ts';
import { call, occurrences, startFaultDeployment, startTraffic, type FaultDeployment } from '../helpers/traffic.ts';

const REDIS = new URL(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
const FALLBACK_ALERT = 'Rate limits fell back to per-instance counters';

describe('serve while Redis is down, stalled or flapping', () => {
  let deployment: FaultDeployment;
  let proxy: TcpProxy;

  before(async () => {
    proxy = await startTcpProxy({ host: REDIS.hostname, port: Number(REDIS.port || 6379) });
    deployment = await startFaultDeployment(() => ({ REDIS_URL: `redis://127.0.0.1:${proxy.port}`, REDIS_PREFIX: `test-${randomUUID()}:` }));
  });

  after(() => deployment?.close(() => proxy.close()) ?? proxy?.close());

  async function assertNothingLost(acknowledged: ReadonlyArray<{ id: string; title: string }>): Promise<void> {
    const client = new pg.Client({ connectionString: deployment.database.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ id: string }>('SELECT id::text FROM tasks WHERE id = ANY($1::uuid[])', [acknowledged.map((t) => t.id)]);
      assert.equal(rows.length, acknowledged.length, 'every task the server acknowledged is stored');
    } finally {
      await client.end();
    }
  }

  test('down, stalled and flapping: sign-in and writes keep working, the fallback is alerted once, nothing acknowledged is lost', async () => {
    const { serve, users, alive } = deployment;
    const traffic = startTraffic(serve.url, users, { exited: () => !alive() });
    try {
      await traffic.progress('traffic with Redis up');

      proxy.setMode('refuse');
      await traffic.progress('traffic while Redis refuses connections');

      // A Redis that accepts and never answers: commands give up after their timeout.
      proxy.setMode('pass');
      await traffic.progress('traffic after Redis is back');
      proxy.setMode('stall');
      await traffic.progress('traffic while Redis is stalled');

      // Flapping: a few short outages in a row.
      for (let flap = 0; flap < 3; flap++) {
        proxy.setMode('refuse');
        await traffic.progress(`traffic in outage ${flap + 1} of a flapping Redis`, 1);
        proxy.setMode('pass');
        await traffic.progress(`traffic after outage ${flap + 1} of a flapping Redis`, 1);
      }
    } finally {
      await traffic.stop();
    }
    console.log(`Redis faults: ${traffic.counts.rounds} rounds, ${traffic.counts.failures} failed ${JSON.stringify([...traffic.counts.failuresByKind])}`);
    assert.deepEqual([...traffic.counts.failuresByKind], [], 'no request failed because Redis did not answer');
    await assertNothingLost(traffic.acknowledged);
    await eventually('the fallback alert in the log', () => (occurrences(serve.output(), FALLBACK_ALERT) > 0 ? true : undefined));
    assert.equal(occurrences(serve.output(), FALLBACK_ALERT), 1, 'the fallback is alerted once, however often Redis flaps');
  });

  test('the limits still hold while Redis is down: a flood of wrong passwords is refused with 429', async () => {
    const { serve, users } = deployment;
    proxy.setMode('refuse');
    const victim = users[0]!;
    const statuses = new Set<number>();
    await eventually(
      'a 429 for a flood of wrong passwords',
      async () => {
        const reply = await call(serve.url, 'POST', '/auth/login', { body: { email: victim.email, password: 'wrong password 123' } });
        statuses.add(reply.status);
        if (reply.status === 429) assert.ok(reply.headers.get('retry-after'), 'a 429 says when to retry');
        return reply.status === 429 ? true : undefined;
      },
      { lastSeen: () => [...statuses].join(',') },
    );
    assert.deepEqual(
      [...statuses].filter((s) => s !== 401 && s !== 429),
      [],
      'only refusals, never a 5xx',
    );
  });

  test('serve stops on SIGTERM while Redis is hung', async () => {
    const { serve, users } = deployment;
    proxy.setMode('pass');
    await eventually('a request with Redis back', async () => ((await call(serve.url, 'GET', '/health')).status === 200 ? true : undefined));
    proxy.setMode('stall');
    await call(serve.url, 'POST', '/auth/login', { body: { email: users[1]!.email, password: users[1]!.password } });
    assert.equal(await serve.stop('SIGTERM'), 0, serve.output().slice(-3_000));
  });
});
