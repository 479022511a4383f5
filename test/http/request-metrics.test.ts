/**
 * Request metrics shared across instances: each instance's counts land in `request_metrics`
 * and add up to the deployment's error rate and p95 (the figures /metrics, health and the
 * watchdog judge); counts a flush could not write are written by the next one, once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LATENCY_BUCKETS_MS, quantileFromBuckets, readDeploymentMetrics } from '../../src/domain/request-metrics.ts';
import { RequestMetrics } from '../../src/http/metrics.ts';
import { requestBreaches } from '../../src/ops/diagnostics/thresholds.ts';
import { openMigratedDatabase, type MigratedDatabase } from '../helpers/migrated-database.ts';

describe('p95 from a latency histogram', () => {
  const histogram = (slowCount: number, fastCount: number) => {
    const buckets = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
    buckets[LATENCY_BUCKETS_MS.indexOf(100)] = fastCount;
    buckets[LATENCY_BUCKETS_MS.indexOf(750)] = slowCount;
    return buckets;
  };

  test('is at or above 500 ms exactly when more than 5 % of requests took longer than 500 ms', () => {
    const fivePercentSlow = quantileFromBuckets(histogram(5, 95), 0.95);
    assert.ok(fivePercentSlow <= 100, String(fivePercentSlow));
    assert.deepEqual(requestBreaches({ errorRate: 0, p95Ms: fivePercentSlow }), []);
    const sixPercentSlow = quantileFromBuckets(histogram(6, 94), 0.95);
    assert.ok(sixPercentSlow > 500 && sixPercentSlow <= 750, String(sixPercentSlow));
    assert.deepEqual(requestBreaches({ errorRate: 0, p95Ms: sixPercentSlow }), [`p95 ${sixPercentSlow} ms ≥ 500 ms`]);
    assert.equal(quantileFromBuckets(histogram(0, 0), 0.95), 0);
  });
});

describe('request metrics in the database', () => {
  let db: MigratedDatabase;
  before(async () => {
    db = await openMigratedDatabase();
  });
  after(async () => {
    await db?.close();
  });

  test('two instances add up: requests, 5xx share, p95 and how many instances answered', async () => {
    const a = new RequestMetrics('instance-a');
    const b = new RequestMetrics('instance-b');
    for (let i = 0; i < 996; i++) a.record(200, 20);
    for (let i = 0; i < 2; i++) b.record(500, 30);
    for (let i = 0; i < 2; i++) b.record(503, 900);
    await a.flush(db.database.pool);
    await b.flush(db.database.pool);
    const metrics = await readDeploymentMetrics(db.database.pool);
    assert.equal(metrics.instances, 2);
    assert.equal(metrics.requests, 1000);
    assert.equal(metrics.errors, 4);
    assert.equal(metrics.errorRate, 0.004);
    assert.ok(metrics.p95Ms <= 25, `p95 ${metrics.p95Ms}`);
    assert.deepEqual(requestBreaches({ errorRate: metrics.errorRate, p95Ms: metrics.p95Ms }), ['error rate 0.4% ≥ 0.1%']);
  });

  test('counts a flush could not write (the database was down) are written by the next flush, once', async () => {
    const before = await readDeploymentMetrics(db.database.pool);
    const metrics = new RequestMetrics('instance-c');
    metrics.record(500, 10);
    const down = { query: async () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432')) };
    await assert.rejects(metrics.flush(down), /ECONNREFUSED/);
    metrics.record(200, 10);
    await metrics.flush(db.database.pool);
    await metrics.flush(db.database.pool);
    const after = await readDeploymentMetrics(db.database.pool);
    assert.equal(after.requests - before.requests, 2);
    assert.equal(after.errors - before.errors, 1);
    const rows = await db.database.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM request_metrics WHERE instance_id = 'instance-c'");
    assert.equal(rows.rows[0]?.n, 2, 'one row per period that had requests');
  });
});
