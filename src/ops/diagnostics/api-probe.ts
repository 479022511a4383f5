/**
 * What the running API says about itself (runbook: "Check System Health", steps 1 and 4):
 * `GET /health`, and `GET /metrics` with the admin token; and waiting for /health to show a
 * change. Never throws: an API that does not answer is itself the finding.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../../errors.ts';

const PROBE_TIMEOUT_MS = 5_000;
/** How long /health gets to show a change (instances hear within a second). */
const HEALTH_WAIT_MS = 5_000;

export interface HealthAnswer {
  readonly url: string;
  /** HTTP status, or null when nothing answered. */
  readonly status: number | null;
  /** `ok`, `maintenance`, `degraded`, … from the body; null when the body had none. */
  readonly state: string | null;
  readonly message: string | null;
  readonly db: string | null;
  readonly version: string | null;
  /** Why nothing usable came back. */
  readonly error: string | null;
}

export async function probeHealth(apiUrl: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<HealthAnswer> {
  const url = new URL('/health', apiUrl).toString();
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    const body = await readJson(response);
    const field = (name: string) => (typeof body[name] === 'string' ? String(body[name]) : null);
    return { url, status: response.status, state: field('status'), message: field('message'), db: field('db'), version: field('version'), error: null };
  } catch (error) {
    return { url, status: null, state: null, message: null, db: null, version: null, error: networkError(error) };
  }
}

export type HealthExpectation = { readonly maintenance: true; readonly message: string } | { readonly maintenance: false };

export interface HealthSeen {
  readonly ok: boolean;
  /** Nothing answered at API_URL. */
  readonly unreachable: boolean;
  readonly detail: string;
}

/**
 * Polls GET /health until it shows the expectation. An API that does not answer is reported
 * as such (it reads the state from the database when it starts), not as a mismatch.
 */
export async function waitForHealth(apiUrl: string, expected: HealthExpectation, waitMs = HEALTH_WAIT_MS): Promise<HealthSeen> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const answer = await probeHealth(apiUrl, 2_000);
    if (answer.status === null) {
      return { ok: false, unreachable: true, detail: `${answer.url} did not answer (${answer.error ?? '?'})` };
    }
    const last = `HTTP ${answer.status} ${JSON.stringify({ status: answer.state, ...(answer.message === null ? {} : { message: answer.message }) })}`;
    const shows = expected.maintenance
      ? answer.status === 503 && answer.state === 'maintenance' && answer.message === expected.message
      : answer.status === 200 && answer.state === 'ok';
    if (shows) return { ok: true, unreachable: false, detail: `${answer.url} answers ${last}` };
    if (Date.now() >= deadline) return { ok: false, unreachable: false, detail: `${answer.url} still answers ${last} after ${waitMs / 1_000} s` };
    await sleep(100);
  }
}

export interface MetricsAnswer {
  readonly url: string;
  readonly status: number | null;
  readonly metrics: {
    readonly activeUsers: number | null;
    readonly requestsPerMinute: number | null;
    readonly errorRate: number | null;
    readonly avgResponseTime: number | null;
    readonly p95ResponseTime: number | null;
    /** Instances that answered requests in the window (the figures cover them all). */
    readonly instances: number | null;
  } | null;
  readonly error: string | null;
}

export async function probeMetrics(apiUrl: string, adminToken: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<MetricsAnswer> {
  const url = new URL('/metrics', apiUrl).toString();
  try {
    const response = await fetch(url, {
      headers: { authorization: `Bearer ${adminToken}`, accept: 'application/json' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await readJson(response);
    if (!response.ok) {
      const error = body.error;
      const message = typeof error === 'object' && error !== null && 'message' in error ? String(error.message) : `HTTP ${response.status}`;
      return { url, status: response.status, metrics: null, error: message };
    }
    const number = (name: string) => (typeof body[name] === 'number' ? Number(body[name]) : null);
    return {
      url,
      status: response.status,
      metrics: {
        activeUsers: number('activeUsers'),
        requestsPerMinute: number('requestsPerMinute'),
        errorRate: number('errorRate'),
        avgResponseTime: number('avgResponseTime'),
        p95ResponseTime: number('p95ResponseTime'),
        instances: number('instances'),
      },
      error: null,
    };
  } catch (error) {
    return { url, status: null, metrics: null, error: networkError(error) };
  }
}

async function readJson(response: Response): Promise<Record<string, unknown>> {
  const text = await response.text();
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? { ...parsed } : {};
  } catch {
    return {};
  }
}

/** `connect ECONNREFUSED 127.0.0.1:3000` rather than undici's bare "fetch failed". */
export function networkError(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return 'no answer within the timeout';
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause instanceof Error && cause.message !== '') return cause.message;
  return describeError(error);
}
