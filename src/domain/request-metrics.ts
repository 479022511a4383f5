/**
 * Request metrics shared by every API instance (table `request_metrics`, migration 0006).
 *
 * Each instance counts in memory (src/http/metrics.ts) and flushes one row per interval:
 * requests, 5xx answers, the sum of response times and a latency histogram. Reading sums
 * the rows of every instance over a window, so `/metrics`, `shipshape health` and the alert
 * evaluation judge the deployment, not whichever instance answered. A histogram rather than
 * single durations keeps rows small whatever the traffic, and adds up across instances; the
 * bounds include 500 ms, the runbook's p95 limit, so "p95 ≥ 500 ms" is decided exactly: it is
 * "more than 5 % of requests took longer than 500 ms".
 */
import type { Queryable } from '../db/pool.ts';

/** Upper bounds (ms, inclusive) of the latency buckets; one more bucket counts the slower requests. */
export const LATENCY_BUCKETS_MS = [5, 10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1_000, 1_500, 2_000, 2_500, 5_000, 10_000] as const;

/** The runbook judges error rate and p95 over the last 5 minutes. */
export const METRICS_WINDOW_MS = 5 * 60_000;

/** Flushed rows are kept this long (the window, with room for `/metrics` and investigation). */
const RETENTION = '1 hour';

/** One instance's counts for one period. */
export interface MetricsPeriod {
  readonly start: Date;
  readonly end: Date;
  readonly requests: number;
  readonly errors: number;
  readonly durationMsSum: number;
  /** One count per LATENCY_BUCKETS_MS bound, then the requests slower than the last. */
  readonly buckets: readonly number[];
}

/** The deployment's figures over a window. */
export interface DeploymentMetrics {
  readonly windowMs: number;
  /** Instances that answered requests in the window. */
  readonly instances: number;
  readonly requests: number;
  readonly errors: number;
  /** 0..1; 0 when nothing was answered. */
  readonly errorRate: number;
  readonly avgMs: number;
  /** Interpolated within its bucket, as Prometheus's histogram_quantile does. */
  readonly p95Ms: number;
}

/** The bucket a response time belongs in. */
export function bucketIndex(durationMs: number): number {
  const index = LATENCY_BUCKETS_MS.findIndex((upper) => durationMs <= upper);
  return index === -1 ? LATENCY_BUCKETS_MS.length : index;
}

export function emptyBuckets(): number[] {
  return new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
}

/** Records one instance's period and drops everyone's rows past retention. */
export async function insertMetricsPeriod(db: Queryable, instanceId: string, period: MetricsPeriod): Promise<void> {
  // One statement, so a period is either written (and never written again) or not at all.
  await db.query(
    `WITH pruned AS (DELETE FROM request_metrics WHERE period_end < now() - interval '${RETENTION}')
     INSERT INTO request_metrics (instance_id, period_start, period_end, requests, errors, duration_ms_sum, latency_buckets)
     VALUES ($1::text, $2::timestamptz, $3::timestamptz, $4::int, $5::int, $6::float8, $7::int[])`,
    [instanceId, period.start, period.end, period.requests, period.errors, period.durationMsSum, [...period.buckets]],
  );
}

/** Every instance's rows whose period ended within the window, summed. */
export async function readDeploymentMetrics(db: Queryable, windowMs: number = METRICS_WINDOW_MS): Promise<DeploymentMetrics> {
  const { rows } = await db.query<{
    instances: number;
    requests: string | null;
    errors: string | null;
    duration: number | null;
    buckets: Array<string | number> | null;
  }>(
    `WITH recent AS (
       SELECT * FROM request_metrics WHERE period_end > now() - $1::bigint * interval '1 millisecond'
     )
     SELECT (SELECT count(DISTINCT instance_id)::int FROM recent) AS instances,
            (SELECT sum(requests) FROM recent) AS requests,
            (SELECT sum(errors) FROM recent) AS errors,
            (SELECT sum(duration_ms_sum) FROM recent) AS duration,
            (SELECT array_agg(total ORDER BY i) FROM (
               SELECT u.i, sum(u.n) AS total FROM recent, unnest(recent.latency_buckets) WITH ORDINALITY AS u(n, i) GROUP BY u.i
             ) AS per_bucket) AS buckets`,
    [windowMs],
  );
  const row = rows[0];
  const requests = Number(row?.requests ?? 0);
  const errors = Number(row?.errors ?? 0);
  const buckets = (row?.buckets ?? []).map(Number);
  return {
    windowMs,
    instances: row?.instances ?? 0,
    requests,
    errors,
    errorRate: requests === 0 ? 0 : round(errors / requests, 5),
    avgMs: requests === 0 ? 0 : round((row?.duration ?? 0) / requests, 1),
    p95Ms: round(quantileFromBuckets(buckets, 0.95), 1),
  };
}

/**
 * The q-quantile of a histogram, interpolated linearly inside the bucket it falls in. Past the
 * largest bound nothing is known but "slower", so the largest bound is the answer there.
 */
export function quantileFromBuckets(buckets: readonly number[], q: number): number {
  const total = buckets.reduce((sum, count) => sum + count, 0);
  if (total === 0) return 0;
  const rank = q * total;
  let below = 0;
  for (const [index, count] of buckets.entries()) {
    if (count > 0 && below + count >= rank) {
      const upper = LATENCY_BUCKETS_MS[index];
      if (upper === undefined) return LATENCY_BUCKETS_MS.at(-1) ?? 0;
      const lower = index === 0 ? 0 : (LATENCY_BUCKETS_MS[index - 1] ?? 0);
      return lower + ((upper - lower) * (rank - below)) / count;
    }
    below += count;
  }
  return LATENCY_BUCKETS_MS.at(-1) ?? 0;
}

function round(value: number, digits: number): number {
  return Number(value.toFixed(digits));
}
