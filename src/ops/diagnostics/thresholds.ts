/**
 * The runbook's numbers, defined once. The watchdog alerts on them (src/ops/watchdog),
 * `shipshape health` fails on them, and the maintenance plan and monitor hold the window to
 * them, so "alerting", "not healthy" and "missed the success criteria" always mean the same.
 *
 * - Error rate < 0.1 % and response time < 500 ms p95 (Monthly Maintenance, Success
 *   Criteria), judged over the last 5 minutes across every instance.
 * - Database connections below 80 % of what clients may use (Troubleshooting Guide: "High
 *   Database Connection Count").
 * - A verified backup at most 26 hours old: the daily backup, with slack for a slow run.
 * - Scheduled jobs and notifications that failed in the last 24 hours.
 */
import { formatDurationMs } from '../../config/duration.ts';
import { METRICS_WINDOW_MS } from '../../domain/request-metrics.ts';

export const thresholds = {
  /** "Error rate < 0.1%": a 5xx share at or above this breaches. */
  errorRate: 0.001,
  /** "Response time < 500ms p95": a p95 at or above this breaches. */
  p95Ms: 500,
  /** Error rate and p95 are judged over this window. */
  metricsWindowMs: METRICS_WINDOW_MS,
  /** Connections at this share of the usable ones (max_connections minus reserved) breach. */
  connectionsRatio: 0.8,
  /** The newest verified backup older than this breaches. */
  backupMaxAgeMs: 26 * 3_600_000,
  /** Failed scheduled jobs and notifications count for this long. */
  failureLookbackMs: 24 * 3_600_000,
} as const;

export interface RequestFigures {
  readonly errorRate: number | null;
  readonly p95Ms: number | null;
}

/** What in a reading of error rate and p95 misses the runbook's numbers; empty when nothing does. */
export function requestBreaches(figures: RequestFigures): string[] {
  const problems: string[] = [];
  if (figures.errorRate !== null && figures.errorRate >= thresholds.errorRate)
    problems.push(`error rate ${percent(figures.errorRate)} ≥ ${percent(thresholds.errorRate)}`);
  if (figures.p95Ms !== null && figures.p95Ms >= thresholds.p95Ms) problems.push(`p95 ${figures.p95Ms} ms ≥ ${thresholds.p95Ms} ms`);
  return problems;
}

export function connectionsBreach(usedRatio: number): boolean {
  return usedRatio >= thresholds.connectionsRatio;
}

/** `0.1%`, `0.035%`. */
export function percent(rate: number): string {
  return `${Number((rate * 100).toFixed(3))}%`;
}

/** `5m`, for messages that name the window. */
export function metricsWindowText(): string {
  return formatDurationMs(thresholds.metricsWindowMs);
}

/** `26h`, `24h`: the runbook counts backup age and look-backs in hours, not `1d2h`. */
export function inHours(ms: number): string {
  return `${Number((ms / 3_600_000).toFixed(2))}h`;
}
