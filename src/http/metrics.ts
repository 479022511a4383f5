/**
 * Request metrics over a rolling window, for `/metrics` (the runbook's JSON) and the
 * Prometheus exposition. Per instance: a load balancer's instances each report their own.
 *
 * - requestsPerMinute: requests completed in the last 60 s.
 * - errorRate: the share of those answered 5xx (client mistakes are not our errors), 0..1.
 * - avgResponseTime: mean time to respond over the same window, in milliseconds.
 * - p95ResponseTime: 95th percentile over the window, in milliseconds.
 */
const WINDOW_SECONDS = 60;
/** Histogram buckets (seconds) for the Prometheus exposition. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface SecondBucket {
  second: number;
  durationsMs: number[];
  errors: number;
}

export interface WindowSummary {
  readonly requestsPerMinute: number;
  readonly errorRate: number;
  readonly avgResponseTime: number;
  readonly p95ResponseTime: number;
}

export class RequestMetrics {
  private readonly window: SecondBucket[] = [];
  private total = 0;
  private errorsTotal = 0;
  private readonly histogram = new Array<number>(BUCKETS.length + 1).fill(0);
  private durationSum = 0;

  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  record(statusCode: number, durationMs: number): void {
    const second = Math.floor(this.now() / 1000);
    let bucket = this.window.at(-1);
    if (!bucket || bucket.second !== second) {
      bucket = { second, durationsMs: [], errors: 0 };
      this.window.push(bucket);
      this.evict(second);
    }
    bucket.durationsMs.push(durationMs);
    const isError = statusCode >= 500;
    if (isError) bucket.errors++;
    this.total++;
    if (isError) this.errorsTotal++;
    this.durationSum += durationMs / 1000;
    const index = BUCKETS.findIndex((upper) => durationMs / 1000 <= upper);
    this.histogram[index === -1 ? BUCKETS.length : index]!++;
  }

  summary(): WindowSummary {
    this.evict(Math.floor(this.now() / 1000));
    const durations = this.window.flatMap((bucket) => bucket.durationsMs).sort((a, b) => a - b);
    const errors = this.window.reduce((sum, bucket) => sum + bucket.errors, 0);
    const count = durations.length;
    const round = (value: number, digits: number) => Number(value.toFixed(digits));
    return {
      requestsPerMinute: count,
      errorRate: count === 0 ? 0 : round(errors / count, 4),
      avgResponseTime: count === 0 ? 0 : round(durations.reduce((a, b) => a + b, 0) / count, 1),
      p95ResponseTime: count === 0 ? 0 : round(durations[Math.min(count - 1, Math.ceil(count * 0.95) - 1)] ?? 0, 1),
    };
  }

  /** Prometheus text exposition format 0.0.4. */
  prometheus(extra: { activeUsers: number; maintenance: boolean }): string {
    const summary = this.summary();
    const lines = [
      '# HELP shipshape_http_requests_total Requests answered since start.',
      '# TYPE shipshape_http_requests_total counter',
      `shipshape_http_requests_total ${this.total}`,
      '# HELP shipshape_http_request_errors_total Requests answered with a 5xx status since start.',
      '# TYPE shipshape_http_request_errors_total counter',
      `shipshape_http_request_errors_total ${this.errorsTotal}`,
      '# HELP shipshape_http_request_duration_seconds Time to respond.',
      '# TYPE shipshape_http_request_duration_seconds histogram',
    ];
    let cumulative = 0;
    BUCKETS.forEach((upper, i) => {
      cumulative += this.histogram[i] ?? 0;
      lines.push(`shipshape_http_request_duration_seconds_bucket{le="${upper}"} ${cumulative}`);
    });
    lines.push(
      `shipshape_http_request_duration_seconds_bucket{le="+Inf"} ${this.total}`,
      `shipshape_http_request_duration_seconds_sum ${this.durationSum}`,
      `shipshape_http_request_duration_seconds_count ${this.total}`,
      '# HELP shipshape_requests_per_minute Requests in the last 60 seconds.',
      '# TYPE shipshape_requests_per_minute gauge',
      `shipshape_requests_per_minute ${summary.requestsPerMinute}`,
      '# HELP shipshape_error_rate Share of requests in the last 60 seconds answered 5xx.',
      '# TYPE shipshape_error_rate gauge',
      `shipshape_error_rate ${summary.errorRate}`,
      '# HELP shipshape_active_users Users seen in the last 15 minutes.',
      '# TYPE shipshape_active_users gauge',
      `shipshape_active_users ${extra.activeUsers}`,
      '# HELP shipshape_maintenance_enabled 1 while maintenance mode is on.',
      '# TYPE shipshape_maintenance_enabled gauge',
      `shipshape_maintenance_enabled ${extra.maintenance ? 1 : 0}`,
    );
    return `${lines.join('\n')}\n`;
  }

  private evict(currentSecond: number): void {
    while (this.window.length > 0 && this.window[0]!.second <= currentSecond - WINDOW_SECONDS) this.window.shift();
  }
}
