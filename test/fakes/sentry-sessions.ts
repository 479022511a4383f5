/**
 * A loopback Sentry serving "Retrieve Release Health Session Statistics"
 * (`GET /api/0/organizations/{org}/sessions/`) to its documented contract: Bearer token (401
 * otherwise), the organization (404), `field` repeated and each one of `sum(session)`,
 * `count_unique(user)`, `crash_free_rate(session)`, `crash_free_rate(user)` (400 otherwise),
 * `groupBy` release, `statsPeriod` or start/end, `interval`; `query` `release:"x" OR …` limits
 * the groups. The answer: `{start, end, intervals, groups: [{by: {release}, totals, series}]}`.
 */
import { createServer } from 'node:http';
import { closeServer, listenOnLoopback } from './loopback.ts';

const FIELDS = ['sum(session)', 'count_unique(user)', 'crash_free_rate(session)', 'crash_free_rate(user)'];

export interface FakeSentrySessions {
  readonly url: string;
  readonly requests: Array<{ path: string; query: URLSearchParams; status: number }>;
  setRelease(release: string, health: { sessions: number; crashFreeRate: number }): void;
  close(): Promise<void>;
}

export async function startFakeSentrySessions(options: { org: string; token: string }): Promise<FakeSentrySessions> {
  const releases = new Map<string, { sessions: number; crashFreeRate: number }>();
  const requests: FakeSentrySessions['requests'] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const reply = (status: number, body: unknown) => {
      requests.push({ path: url.pathname, query: url.searchParams, status });
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const match = /^\/api\/0\/organizations\/([^/]+)\/sessions\/$/.exec(url.pathname);
    if (req.method !== 'GET' || !match) return reply(404, { detail: 'The requested resource does not exist' });
    if (req.headers.authorization !== `Bearer ${options.token}`) return reply(401, { detail: 'Invalid token' });
    if (decodeURIComponent(match[1] ?? '') !== options.org) return reply(404, { detail: 'The requested resource does not exist' });
    const q = url.searchParams;
    const fields = q.getAll('field');
    if (fields.length === 0 || fields.some((f) => !FIELDS.includes(f))) return reply(400, { detail: 'Invalid field' });
    if (q.get('statsPeriod') === null && (q.get('start') === null || q.get('end') === null))
      return reply(400, { detail: 'statsPeriod or start and end are required' });
    const groupBy = q.getAll('groupBy');
    if (!groupBy.includes('release')) return reply(400, { detail: 'this fake answers groupBy=release only' });
    const wanted = [...(q.get('query') ?? '').matchAll(/release:"([^"]+)"/g)].map((m) => m[1]!);
    const groups = [...releases]
      .filter(([name]) => wanted.length === 0 || wanted.includes(name))
      .map(([name, h]) => ({
        by: { release: name },
        totals: Object.fromEntries(
          fields.map((f) => [
            f,
            f === 'sum(session)' ? h.sessions : f.startsWith('crash_free_rate') ? (h.sessions === 0 ? null : h.crashFreeRate) : h.sessions,
          ]),
        ),
        series: Object.fromEntries(fields.map((f) => [f, []])),
      }));
    const now = new Date().toISOString();
    return reply(200, { start: now, end: now, intervals: [], groups, query: q.get('query') ?? '' });
  });
  return listenOnLoopback(server).then((url) => ({
    url,
    requests,
    setRelease: (release, health) => void releases.set(release, health),
    close: () => closeServer(server),
  }));
}
