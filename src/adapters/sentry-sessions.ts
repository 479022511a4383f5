/**
 * Release health from Sentry: "Retrieve Release Health Session Statistics"
 * (`GET /api/0/organizations/{org}/sessions/`), grouped by release.
 *
 * Documented contract used here: `field` repeated (`sum(session)`, `crash_free_rate(session)`),
 * `groupBy=release`, `statsPeriod` (e.g. `24h`), `interval`, `project=-1` for every project,
 * `query` in Sentry's search syntax (`release:"a" OR release:"b"`). The answer is `{start, end,
 * intervals, groups: [{by: {release}, totals: {"sum(session)": n, "crash_free_rate(session)":
 * 0..1 | null}, series}]}`. Auth: an organization token (org:read) as `Bearer`.
 */
import { z } from 'zod';
import { ShipError } from '../errors.ts';

export interface ReleaseSessions {
  readonly sessions: number;
  /** 0..1; null when Sentry has no sessions to compute it from. */
  readonly crashFreeRate: number | null;
}

const answer = z.object({
  groups: z.array(
    z.object({
      by: z.object({ release: z.string().optional() }).passthrough(),
      totals: z.record(z.string(), z.number().nullable()),
    }),
  ),
});

export function sentrySessionsUrl(options: { apiUrl: string; org: string }, releases: readonly string[], periodHours: number): string {
  const url = new URL(`/api/0/organizations/${encodeURIComponent(options.org)}/sessions/`, options.apiUrl);
  url.searchParams.append('field', 'sum(session)');
  url.searchParams.append('field', 'crash_free_rate(session)');
  url.searchParams.set('groupBy', 'release');
  url.searchParams.set('statsPeriod', `${periodHours}h`);
  url.searchParams.set('interval', '1h');
  url.searchParams.set('project', '-1');
  url.searchParams.set('query', releases.map((release) => `release:"${release.replaceAll('"', '')}"`).join(' OR '));
  return url.toString();
}

/** Sessions and crash-free rate per release name over the last `periodHours`. */
export async function fetchReleaseSessions(
  options: { apiUrl: string; org: string; token: string; timeoutMs?: number },
  releases: readonly string[],
  periodHours: number,
): Promise<Map<string, ReleaseSessions>> {
  const url = sentrySessionsUrl(options, releases, periodHours);
  let response: Response;
  try {
    response = await fetch(url, {
      headers: { authorization: `Bearer ${options.token}`, accept: 'application/json' },
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
  } catch (error) {
    throw new ShipError(
      'SHIP_ERR_PROVIDER_FAILED',
      `Sentry at ${new URL(options.apiUrl).origin} did not answer the release health query (${error instanceof Error ? error.message : String(error)}). Check SENTRY_API_URL and the network.`,
    );
  }
  const text = await response.text();
  if (!response.ok) {
    const advice =
      response.status === 401 || response.status === 403
        ? 'Check SENTRY_TOKEN (org:read).'
        : response.status === 404
          ? 'Check SENTRY_ORG.'
          : 'Check Sentry’s status.';
    throw new ShipError('SHIP_ERR_PROVIDER_FAILED', `Sentry answered HTTP ${response.status} to the release health query. ${advice}`);
  }
  let parsed;
  try {
    parsed = answer.safeParse(JSON.parse(text));
  } catch {
    throw new ShipError('SHIP_ERR_PROVIDER_FAILED', 'Sentry answered the release health query with something that is not JSON. Check SENTRY_API_URL.');
  }
  if (!parsed.success)
    throw new ShipError('SHIP_ERR_PROVIDER_FAILED', `Sentry's release health answer has an unexpected shape (${parsed.error.issues[0]?.message ?? '?'}).`);
  const result = new Map<string, ReleaseSessions>();
  for (const group of parsed.data.groups) {
    if (group.by.release === undefined) continue;
    result.set(group.by.release, { sessions: group.totals['sum(session)'] ?? 0, crashFreeRate: group.totals['crash_free_rate(session)'] ?? null });
  }
  return result;
}
