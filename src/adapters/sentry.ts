/**
 * Error counts from Sentry's organization stats (`GET /api/0/organizations/{org}/stats_v2/`,
 * "Retrieve Event Counts for an Organization (v2)"), for `shipshape health`.
 *
 * Documented contract used here: `field` and `groupBy` are required; `category=error` counts
 * error events; `interval` is at least 1h; `statsPeriod` is relative to now; the answer is
 * `{start, end, intervals: [...], groups: [{by: {outcome}, totals: {"sum(quantity)": n},
 * series: {"sum(quantity)": [n per interval]}}]}`. Grouping by outcome separates errors
 * Sentry accepted from those it dropped (rate limited, filtered, invalid), which are still
 * errors the app produced. Auth is an organization or user token as `Bearer`.
 */
import { ShipError } from '../errors.ts';

const FIELD = 'sum(quantity)';

export interface SentryStatsOptions {
  /** e.g. https://sentry.io or a self-hosted Sentry's base URL. */
  readonly apiUrl: string;
  /** The organization slug. */
  readonly org: string;
  /** An auth token with org:read; never appears in errors. */
  readonly token: string;
  readonly timeoutMs?: number;
}

export interface SentryErrorStats {
  /** Hour buckets, oldest first (ISO 8601). */
  readonly intervals: readonly string[];
  /** Errors accepted per hour, aligned with `intervals`. */
  readonly acceptedPerHour: readonly number[];
  /** Errors accepted over the whole period. */
  readonly accepted: number;
  /** Errors Sentry dropped (rate limited, filtered, invalid, client discards) over the period. */
  readonly dropped: number;
  /** Accepted in the newest bucket (the hour in progress). */
  readonly lastHour: number;
  readonly periodHours: number;
}

export function sentryStatsUrl(options: Pick<SentryStatsOptions, 'apiUrl' | 'org'>, periodHours = 24): string {
  const url = new URL(`/api/0/organizations/${encodeURIComponent(options.org)}/stats_v2/`, options.apiUrl);
  url.searchParams.set('field', FIELD);
  url.searchParams.set('groupBy', 'outcome');
  url.searchParams.set('category', 'error');
  url.searchParams.set('interval', '1h');
  url.searchParams.set('statsPeriod', `${periodHours}h`);
  return url.toString();
}

/** Error counts for the last `periodHours` hours; throws SHIP_ERR_PROVIDER_FAILED with a secret-free message. */
export async function fetchSentryErrorStats(options: SentryStatsOptions, periodHours = 24): Promise<SentryErrorStats> {
  const url = sentryStatsUrl(options, periodHours);
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { authorization: `Bearer ${options.token}`, accept: 'application/json' },
      signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
    });
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : error instanceof Error ? error.message : String(error);
    throw new ShipError(
      'SHIP_ERR_PROVIDER_FAILED',
      `Sentry at ${new URL(options.apiUrl).origin} did not answer (${cause}). Check SENTRY_API_URL and the network.`,
    );
  }
  const text = await response.text();
  if (!response.ok) {
    const advice =
      response.status === 401 || response.status === 403
        ? 'Check SENTRY_TOKEN: it must be valid and have the org:read scope.'
        : response.status === 404
          ? `Check SENTRY_ORG: no organization "${options.org}" is visible to this token.`
          : 'Check Sentry’s status and try again.';
    throw new ShipError('SHIP_ERR_PROVIDER_FAILED', `Sentry stats answered HTTP ${response.status}${detailOf(text)}. ${advice}`);
  }
  return parseStats(text, periodHours);
}

function parseStats(text: string, periodHours: number): SentryErrorStats {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ShipError('SHIP_ERR_PROVIDER_FAILED', 'Sentry stats answered with something that is not JSON. Check SENTRY_API_URL points at Sentry.');
  }
  const intervals = isRecord(body) && Array.isArray(body.intervals) ? body.intervals.map(String) : [];
  const groups = isRecord(body) && Array.isArray(body.groups) ? body.groups.filter(isRecord) : [];
  const accepted = new Array<number>(intervals.length).fill(0);
  let acceptedTotal = 0;
  let dropped = 0;
  for (const group of groups) {
    const outcome = isRecord(group.by) ? String(group.by.outcome ?? '') : '';
    const total = isRecord(group.totals) ? Number(group.totals[FIELD] ?? 0) : 0;
    const series = isRecord(group.series) && Array.isArray(group.series[FIELD]) ? group.series[FIELD].map(Number) : [];
    if (outcome === 'accepted') {
      acceptedTotal += total;
      series.forEach((value, i) => {
        if (i < accepted.length) accepted[i] = (accepted[i] ?? 0) + value;
      });
    } else dropped += total;
  }
  return { intervals, acceptedPerHour: accepted, accepted: acceptedTotal, dropped, lastHour: accepted.at(-1) ?? 0, periodHours };
}

function detailOf(text: string): string {
  try {
    const body: unknown = JSON.parse(text);
    if (isRecord(body) && typeof body.detail === 'string') return ` (${body.detail.slice(0, 200)})`;
  } catch {
    // not JSON
  }
  return '';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
