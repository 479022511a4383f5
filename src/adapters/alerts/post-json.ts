/**
 * POST a JSON body to an alerting provider with a per-attempt timeout and a small, bounded
 * retry. Alerts are sent while a procedure is running (often one that is failing), so a slow
 * or flapping provider must cost seconds, not minutes: a few attempts, exponential backoff
 * with jitter, and a provider's Retry-After honoured only while it stays under the cap.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ShipError } from '../../errors.ts';
import type { Redact } from '../../redact.ts';

export interface RetryPolicy {
  /** Extra attempts after the first one. */
  retries: number;
  /** First backoff; doubles on each further attempt. */
  backoffMs: number;
  /** Longest wait between attempts; a longer Retry-After ends the retries instead. */
  maxDelayMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { retries: 2, backoffMs: 250, maxDelayMs: 5_000 };
export const defaultTimeoutMs = 5_000;

export interface PostJsonOptions {
  /** Provider name for messages: `Slack`, `PagerDuty`. */
  provider: string;
  url: string;
  body: unknown;
  timeoutMs: number;
  retry: RetryPolicy;
  redact: Redact;
  /** Turns a final non-2xx answer into the "what to do" half of the error message. */
  advise: (status: number, body: string) => string;
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/** Resolves with the first 2xx answer; rejects with SHIP_ERR_PROVIDER_FAILED otherwise. */
export async function postJson(options: PostJsonOptions): Promise<HttpAnswer> {
  const { provider, retry, redact } = options;
  const payload = JSON.stringify(options.body);
  const attempts = retry.retries + 1;
  let lastProblem = '';
  let lastAdvice = 'Check the provider status and the alert routing configuration.';

  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    let delayMs: number;
    try {
      const response = await fetch(options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: payload,
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      const body = await response.text();
      if (response.ok) return { status: response.status, body };

      lastProblem = `answered HTTP ${response.status}${describeBody(body)}`;
      lastAdvice = options.advise(response.status, body);
      if (!isRetryableStatus(response.status)) break;
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
      if (retryAfterMs !== undefined && retryAfterMs > retry.maxDelayMs) {
        lastProblem += ` and asked to retry after ${Math.ceil(retryAfterMs / 1000)} s`;
        break;
      }
      delayMs = retryAfterMs ?? backoff(retry, attempt);
    } catch (error) {
      lastProblem = describeNetworkError(error, options.timeoutMs);
      lastAdvice = `Check that ${provider} is reachable from this host and that its URL is right.`;
      delayMs = backoff(retry, attempt);
    }
    if (attempt < attempts) await sleep(delayMs);
  }

  const tries = attempts === 1 ? '' : ` (tried up to ${attempts} times)`;
  throw new ShipError('SHIP_ERR_PROVIDER_FAILED', redact(`${provider} ${lastProblem}${tries}. ${lastAdvice}`), { details: { provider } });
}

function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

function backoff(retry: RetryPolicy, attempt: number): number {
  const exponential = retry.backoffMs * 2 ** (attempt - 1);
  // Jitter keeps several Shipshape instances from retrying a shared webhook in lock-step.
  return Math.min(retry.maxDelayMs, Math.round(exponential * (0.5 + Math.random() / 2)));
}

/** Retry-After is either delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - Date.now());
}

function describeBody(body: string): string {
  const oneLine = body.replace(/\s+/g, ' ').trim();
  if (oneLine === '') return '';
  return ` "${oneLine.length > 300 ? `${oneLine.slice(0, 300)}…` : oneLine}"`;
}

function describeNetworkError(error: unknown, timeoutMs: number): string {
  if (error instanceof DOMException && error.name === 'TimeoutError') {
    return `did not answer within ${timeoutMs} ms`;
  }
  if (error instanceof Error) {
    // undici reports "fetch failed" and keeps the useful part (ECONNREFUSED …) in `cause`.
    const cause: unknown = error.cause;
    if (cause instanceof Error) return `could not be reached: ${cause.message}`;
    return `could not be reached: ${error.message}`;
  }
  return `could not be reached: ${String(error)}`;
}
