/**
 * This instance's request counts: kept in memory on the request path (a few additions per
 * response, no I/O) and flushed as one row per interval into `request_metrics`, where every
 * instance's rows add up to the deployment's figures (src/domain/request-metrics.ts) that
 * `/metrics`, `shipshape health` and the alert evaluation read.
 *
 * A flush that fails (the database is down) keeps its counts for the next one, so the 5xx
 * answered during an outage are counted once the database is back; counts older than the
 * metrics window by then are dropped, as they could no longer change any judgement.
 *
 * The Prometheus exposition stays per instance (Prometheus scrapes and adds up instances
 * itself): counters and a histogram since start, plus the deployment's window gauges.
 */
import {
  bucketIndex,
  emptyBuckets,
  insertMetricsPeriod,
  LATENCY_BUCKETS_MS,
  METRICS_WINDOW_MS,
  type DeploymentMetrics,
  type MetricsPeriod,
} from '../domain/request-metrics.ts';
import type { Queryable } from '../db/pool.ts';
import { insertVersionCounts, UNKNOWN_VERSION } from '../domain/version-metrics.ts';

/** Distinct app versions counted per period; more (a client inventing versions) count as `unknown`. */
const MAX_VERSIONS_PER_PERIOD = 50;

interface OpenPeriod {
  start: number;
  /** Requests and 5xx per app version (X-App-Version), for the release gates. */
  byVersion: Map<string, { requests: number; errors: number }>;
  requests: number;
  errors: number;
  durationMsSum: number;
  buckets: number[];
}

export class RequestMetrics {
  private open: OpenPeriod;
  /** Closed periods a flush could not write yet, oldest first. */
  private unsent: Array<MetricsPeriod & { byVersion: OpenPeriod['byVersion']; written?: boolean }> = [];
  /** Flushes run one after another, each closing the period at the moment it starts. */
  private flushes: Promise<void> = Promise.resolve();
  private total = 0;
  private errorsTotal = 0;
  private durationSumSeconds = 0;
  private readonly histogram = emptyBuckets();

  readonly instanceId: string;
  private readonly now: () => number;

  /** `instanceId` names this instance's rows; unique per process. */
  constructor(instanceId: string, now: () => number = Date.now) {
    this.instanceId = instanceId;
    this.now = now;
    this.open = this.newPeriod();
  }

  record(statusCode: number, durationMs: number, appVersion: string = UNKNOWN_VERSION): void {
    const isError = statusCode >= 500;
    const bucket = bucketIndex(durationMs);
    const open = this.open;
    const key = open.byVersion.has(appVersion) || open.byVersion.size < MAX_VERSIONS_PER_PERIOD ? appVersion : UNKNOWN_VERSION;
    const counts = open.byVersion.get(key) ?? { requests: 0, errors: 0 };
    counts.requests++;
    if (isError) counts.errors++;
    open.byVersion.set(key, counts);
    open.requests++;
    open.durationMsSum += durationMs;
    open.buckets[bucket]!++;
    if (isError) open.errors++;
    this.total++;
    if (isError) this.errorsTotal++;
    this.durationSumSeconds += durationMs / 1000;
    this.histogram[bucket]!++;
  }

  /**
   * Writes what was counted since the last flush (and anything an earlier flush could not
   * write). Flushes never overlap: a second caller's runs after the first, so `/metrics` can
   * flush and then read its own latest requests.
   */
  flush(db: Queryable): Promise<void> {
    const run = this.flushes.then(() => this.writeClosedPeriods(db));
    this.flushes = run.catch(() => undefined);
    return run;
  }

  /** Prometheus text exposition format 0.0.4. */
  prometheus(extra: { activeUsers: number; maintenance: boolean; deployment: DeploymentMetrics }): string {
    const { deployment } = extra;
    const lines = [
      '# HELP shipshape_http_requests_total Requests this instance answered since start.',
      '# TYPE shipshape_http_requests_total counter',
      `shipshape_http_requests_total ${this.total}`,
      '# HELP shipshape_http_request_errors_total Requests this instance answered with a 5xx status since start (maintenance 503s excepted).',
      '# TYPE shipshape_http_request_errors_total counter',
      `shipshape_http_request_errors_total ${this.errorsTotal}`,
      '# HELP shipshape_http_request_duration_seconds Time this instance took to respond.',
      '# TYPE shipshape_http_request_duration_seconds histogram',
    ];
    let cumulative = 0;
    LATENCY_BUCKETS_MS.forEach((upper, i) => {
      cumulative += this.histogram[i] ?? 0;
      lines.push(`shipshape_http_request_duration_seconds_bucket{le="${upper / 1000}"} ${cumulative}`);
    });
    const minutes = deployment.windowMs / 60_000;
    lines.push(
      `shipshape_http_request_duration_seconds_bucket{le="+Inf"} ${this.total}`,
      `shipshape_http_request_duration_seconds_sum ${this.durationSumSeconds}`,
      `shipshape_http_request_duration_seconds_count ${this.total}`,
      `# HELP shipshape_requests_per_minute Requests per minute over the last ${minutes} minutes, every instance.`,
      '# TYPE shipshape_requests_per_minute gauge',
      `shipshape_requests_per_minute ${requestsPerMinute(deployment)}`,
      `# HELP shipshape_error_rate Share of requests answered 5xx over the last ${minutes} minutes, every instance.`,
      '# TYPE shipshape_error_rate gauge',
      `shipshape_error_rate ${deployment.errorRate}`,
      `# HELP shipshape_response_time_p95_seconds 95th percentile response time over the last ${minutes} minutes, every instance.`,
      '# TYPE shipshape_response_time_p95_seconds gauge',
      `shipshape_response_time_p95_seconds ${deployment.p95Ms / 1000}`,
      '# HELP shipshape_active_users Users seen in the last 15 minutes.',
      '# TYPE shipshape_active_users gauge',
      `shipshape_active_users ${extra.activeUsers}`,
      '# HELP shipshape_maintenance_enabled 1 while maintenance mode is on.',
      '# TYPE shipshape_maintenance_enabled gauge',
      `shipshape_maintenance_enabled ${extra.maintenance ? 1 : 0}`,
    );
    return `${lines.join('\n')}\n`;
  }

  private async writeClosedPeriods(db: Queryable): Promise<void> {
    const closed = this.open;
    const end = this.now();
    this.open = this.newPeriod(end);
    if (closed.requests > 0) {
      this.unsent.push({
        start: new Date(closed.start),
        end: new Date(end),
        requests: closed.requests,
        errors: closed.errors,
        durationMsSum: closed.durationMsSum,
        buckets: closed.buckets,
        byVersion: closed.byVersion,
      });
    }
    this.unsent = this.unsent.filter((period) => period.end.getTime() > end - METRICS_WINDOW_MS);
    while (this.unsent.length > 0) {
      const period = this.unsent[0]!;
      if (!period.written) await insertMetricsPeriod(db, this.instanceId, period);
      period.written = true;
      // Written after its period row: a failure here retries only the version counts.
      await insertVersionCounts(db, this.instanceId, period.end, period.byVersion);
      this.unsent.shift();
    }
  }

  private newPeriod(start = this.now()): OpenPeriod {
    return { start, requests: 0, errors: 0, durationMsSum: 0, buckets: emptyBuckets(), byVersion: new Map() };
  }
}

/** The runbook's `requestsPerMinute`, from a window of any length. */
export function requestsPerMinute(metrics: DeploymentMetrics): number {
  return Number((metrics.requests / (metrics.windowMs / 60_000)).toFixed(1));
}
