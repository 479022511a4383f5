/**
 * The T+1 hour watch (runbook: Post-Maintenance, `watch -n 60 'curl …/metrics'`): read
 * `/metrics` every interval for the watch's length and hold each reading against the plan's
 * success criteria. A reading that cannot be taken counts as a breach: a watch that sees
 * nothing has not seen the system healthy.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../../errors.ts';
import { requestBreaches, thresholds } from '../diagnostics/thresholds.ts';

/** The plan's success criteria (runbook: "Error rate < 0.1%", "Response time < 500ms p95"), the numbers alerts use. */
export const successCriteria = {
  maxErrorRate: thresholds.errorRate,
  maxP95Ms: thresholds.p95Ms,
} as const;

export interface MetricsSample {
  readonly at: Date;
  readonly ok: boolean;
  readonly errorRate: number | null;
  readonly p95Ms: number | null;
  readonly requestsPerMinute: number | null;
  /** Why the sample breaches the criteria, when it does. */
  readonly problems: string[];
}

export interface MonitorOptions {
  readonly apiUrl: string;
  readonly adminToken: string;
  readonly durationMs: number;
  readonly intervalMs: number;
  readonly signal?: AbortSignal | undefined;
  readonly onSample?: ((sample: MetricsSample) => void) | undefined;
  readonly timeoutMs?: number;
}

export interface MonitorReport {
  readonly samples: MetricsSample[];
  readonly breaches: number;
  readonly worstErrorRate: number | null;
  readonly worstP95Ms: number | null;
  /** True when every reading met the criteria (and at least one was taken). */
  readonly passed: boolean;
  /** Stopped early by the operator. */
  readonly interrupted: boolean;
}

/** One reading of GET /metrics, judged against the criteria. */
export async function sampleMetrics(apiUrl: string, adminToken: string, timeoutMs = 10_000): Promise<MetricsSample> {
  const at = new Date();
  try {
    const response = await fetch(`${apiUrl.replace(/\/+$/, '')}/metrics`, {
      headers: { authorization: `Bearer ${adminToken}`, accept: 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body: unknown = await response.json().catch(() => undefined);
    if (!response.ok || typeof body !== 'object' || body === null) {
      return {
        at,
        ok: false,
        errorRate: null,
        p95Ms: null,
        requestsPerMinute: null,
        problems: [`GET /metrics answered HTTP ${response.status}${response.status === 403 ? ' (is ADMIN_TOKEN a live admin token?)' : ''}`],
      };
    }
    const errorRate = numberField(body, 'errorRate');
    const p95Ms = numberField(body, 'p95ResponseTime');
    const requestsPerMinute = numberField(body, 'requestsPerMinute');
    const problems: string[] = [];
    if (errorRate === null || p95Ms === null) problems.push('GET /metrics did not report errorRate and p95ResponseTime');
    problems.push(...requestBreaches({ errorRate, p95Ms }));
    return { at, ok: problems.length === 0, errorRate, p95Ms, requestsPerMinute, problems };
  } catch (error) {
    return { at, ok: false, errorRate: null, p95Ms: null, requestsPerMinute: null, problems: [`GET /metrics failed: ${describeError(error)}`] };
  }
}

/** Samples at once, then every `intervalMs` until `durationMs` has passed (or the signal stops it). */
export async function monitorMetrics(options: MonitorOptions): Promise<MonitorReport> {
  const samples: MetricsSample[] = [];
  const started = Date.now();
  let interrupted = false;
  for (;;) {
    const sample = await sampleMetrics(options.apiUrl, options.adminToken, options.timeoutMs);
    samples.push(sample);
    options.onSample?.(sample);
    const remaining = options.durationMs - (Date.now() - started);
    if (remaining <= 0) break;
    try {
      await sleep(Math.min(options.intervalMs, remaining), undefined, options.signal ? { signal: options.signal } : undefined);
    } catch {
      interrupted = true;
      break;
    }
    if (Date.now() - started >= options.durationMs) {
      samples.push(await sampleMetrics(options.apiUrl, options.adminToken, options.timeoutMs));
      options.onSample?.(samples.at(-1)!);
      break;
    }
  }
  const worst = (values: Array<number | null>) => {
    const known = values.filter((value): value is number => value !== null);
    return known.length === 0 ? null : Math.max(...known);
  };
  const breaches = samples.filter((sample) => !sample.ok).length;
  return {
    samples,
    breaches,
    worstErrorRate: worst(samples.map((sample) => sample.errorRate)),
    worstP95Ms: worst(samples.map((sample) => sample.p95Ms)),
    passed: breaches === 0 && samples.length > 0,
    interrupted,
  };
}

function numberField(body: object, field: string): number | null {
  const value: unknown = Object.entries(body).find(([key]) => key === field)?.[1];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}
