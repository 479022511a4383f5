/**
 * A loopback Sentry that serves "Retrieve Event Counts for an Organization (v2)" to its
 * documented contract (docs.sentry.io/api/organizations/retrieve-event-counts-for-an-organization-v2/):
 *
 * - only `GET /api/0/organizations/{organization_id_or_slug}/stats_v2/`;
 * - `Authorization: Bearer <token>` must be the configured token → else 401 `{"detail"}`;
 *   an unknown organization → 404 `{"detail"}`;
 * - `field` required, one of `sum(quantity)`, `sum(times_seen)`; `groupBy` required (one or
 *   more of outcome, category, reason, project); `statsPeriod` or both `start` and `end`;
 *   `interval` at least 1h and at most 1d; `category` one of the documented categories;
 *   violations → 400 `{"detail"}`;
 * - answer `{start, end, intervals, groups: [{by: {outcome}, totals: {field: n}, series: {field: [...]}}]}`,
 *   one interval per hour of the period.
 */
import { createServer } from 'node:http';
import { closeServer, listenOnLoopback } from './loopback.ts';

const FIELDS = ['sum(quantity)', 'sum(times_seen)'];
const GROUP_BY = ['outcome', 'category', 'reason', 'project'];
const CATEGORIES = ['error', 'transaction', 'attachment', 'replay', 'profile', 'monitor', 'span', 'default', 'security'];

export interface FakeSentryOptions {
  readonly org: string;
  readonly token: string;
  /** Accepted errors per hour, oldest first; the last entry is the hour in progress. Default 24 zeros. */
  readonly acceptedPerHour?: readonly number[];
  /** Dropped (rate limited) errors over the period. */
  readonly rateLimited?: number;
}

export interface FakeSentry {
  readonly url: string;
  /** Every request's path and query, in order. */
  readonly requests: Array<{ path: string; query: URLSearchParams; authorization: string | undefined; status: number }>;
  setAcceptedPerHour(values: readonly number[]): void;
  close(): Promise<void>;
}

export async function startFakeSentry(options: FakeSentryOptions): Promise<FakeSentry> {
  let accepted = [...(options.acceptedPerHour ?? new Array<number>(24).fill(0))];
  const requests: FakeSentry['requests'] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const reply = (status: number, body: unknown) => {
      requests.push({ path: url.pathname, query: url.searchParams, authorization: req.headers.authorization, status });
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const match = /^\/api\/0\/organizations\/([^/]+)\/stats_v2\/$/.exec(url.pathname);
    if (req.method !== 'GET' || !match) return reply(404, { detail: 'The requested resource does not exist' });
    if (req.headers.authorization !== `Bearer ${options.token}`) return reply(401, { detail: 'Invalid token' });
    if (decodeURIComponent(match[1] ?? '') !== options.org) return reply(404, { detail: 'The requested resource does not exist' });
    const q = url.searchParams;
    const field = q.get('field');
    if (field === null || !FIELDS.includes(field)) return reply(400, { detail: 'field: this field is required and must be sum(quantity) or sum(times_seen)' });
    const groupBy = q.getAll('groupBy');
    if (groupBy.length === 0 || groupBy.some((g) => !GROUP_BY.includes(g))) return reply(400, { detail: 'groupBy: this field is required' });
    const category = q.get('category');
    if (category !== null && !CATEGORIES.includes(category)) return reply(400, { detail: `Invalid category: ${category}` });
    const period = q.get('statsPeriod');
    if (period === null && (q.get('start') === null || q.get('end') === null)) return reply(400, { detail: 'statsPeriod or start and end are required' });
    const interval = q.get('interval') ?? '1h';
    if (!/^(\d+)(h|d)$/.test(interval) || interval === '0h' || (/d$/.test(interval) && interval !== '1d')) {
      return reply(400, { detail: 'The interval has to be at least 1h and at most 1d' });
    }
    const hours = period === null ? accepted.length : Number(/^(\d+)h$/.exec(period)?.[1] ?? 24);
    const series = accepted.slice(-hours);
    const now = new Date();
    now.setUTCMinutes(0, 0, 0);
    const intervals = series.map((_, i) => new Date(now.getTime() - (series.length - 1 - i) * 3_600_000).toISOString().replace('.000Z', 'Z'));
    const groups: unknown[] = [];
    if (groupBy.includes('outcome')) {
      groups.push({ by: { outcome: 'accepted' }, totals: { [field]: series.reduce((a, b) => a + b, 0) }, series: { [field]: series } });
      if (options.rateLimited) {
        const dropped = new Array<number>(series.length).fill(0);
        dropped[dropped.length - 1] = options.rateLimited;
        groups.push({ by: { outcome: 'rate_limited' }, totals: { [field]: options.rateLimited }, series: { [field]: dropped } });
      }
    } else {
      groups.push({ by: {}, totals: { [field]: series.reduce((a, b) => a + b, 0) + (options.rateLimited ?? 0) }, series: { [field]: series } });
    }
    return reply(200, { start: intervals[0] ?? now.toISOString(), end: new Date(now.getTime() + 3_600_000).toISOString(), intervals, groups });
  });
  const url = await listenOnLoopback(server);
  return {
    url,
    requests,
    setAcceptedPerHour(values) {
      accepted = [...values];
    },
    close: () => closeServer(server),
  };
}
