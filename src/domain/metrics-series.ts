/**
 * The runbook's numbers minute by minute over the last hour, for the console's charts: requests,
 * error rate and p95 from the same `request_metrics` rows (every instance's flushes) that
 * /metrics, `shipshape health` and the watchdog sum over five minutes. Those rows are kept an
 * hour, so an hour is what can be drawn.
 */
import type { Queryable } from '../db/pool.ts';
import { quantileFromBuckets } from './request-metrics.ts';

export interface MetricsMinute {
  readonly minute: Date;
  readonly requests: number;
  readonly errorRate: number;
  readonly p95Ms: number;
}

export async function readMetricsSeries(db: Queryable): Promise<MetricsMinute[]> {
  const { rows } = await db.query<{ minute: Date; requests: number; errors: number; latency_buckets: number[] }>(
    `SELECT date_trunc('minute', period_end) AS minute, requests, errors, latency_buckets
       FROM request_metrics WHERE period_end > now() - interval '1 hour' ORDER BY period_end`,
  );
  const minutes = new Map<number, { minute: Date; requests: number; errors: number; buckets: number[] }>();
  for (const row of rows) {
    const key = row.minute.getTime();
    const sum = minutes.get(key) ?? { minute: row.minute, requests: 0, errors: 0, buckets: [] };
    sum.requests += row.requests;
    sum.errors += row.errors;
    row.latency_buckets.forEach((count, index) => (sum.buckets[index] = (sum.buckets[index] ?? 0) + Number(count)));
    minutes.set(key, sum);
  }
  return [...minutes.values()].map((m) => ({
    minute: m.minute,
    requests: m.requests,
    errorRate: m.requests === 0 ? 0 : m.errors / m.requests,
    p95Ms: quantileFromBuckets(m.buckets, 0.95),
  }));
}
