/**
 * API requests and 5xx answers per app version (table `request_metrics_by_version`, migration
 * 0011), from the version the app sends in `X-App-Version`. Each API instance flushes one row
 * per version per flush period beside its `request_metrics` row; rows are kept for 14 days so a
 * release health gate can compare a day of the new version with a day of the old.
 */
import type { Queryable } from '../db/pool.ts';

/** The header the app sends its version in (semver, e.g. `2.4.1`). */
export const APP_VERSION_HEADER = 'x-app-version';
/** What requests without a (well-formed) version are counted under. */
export const UNKNOWN_VERSION = 'unknown';
const VERSION = /^\d{1,5}\.\d{1,5}\.\d{1,5}$/;
const RETENTION = '14 days';

/** The header's version when it is a plain semver, else `unknown` (so clients cannot fill the table with names). */
export function appVersionOf(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && VERSION.test(value.trim()) ? value.trim() : UNKNOWN_VERSION;
}

export interface VersionCounts {
  readonly requests: number;
  readonly errors: number;
}

export interface VersionMetrics extends VersionCounts {
  readonly version: string;
  /** 0..1; 0 when nothing was answered. */
  readonly errorRate: number;
}

export async function insertVersionCounts(db: Queryable, instanceId: string, periodEnd: Date, counts: ReadonlyMap<string, VersionCounts>): Promise<void> {
  const entries = [...counts].filter(([, c]) => c.requests > 0);
  if (entries.length === 0) return;
  await db.query(
    `WITH pruned AS (DELETE FROM request_metrics_by_version WHERE period_end < now() - interval '${RETENTION}')
     INSERT INTO request_metrics_by_version (instance_id, period_end, app_version, requests, errors)
     SELECT $1::text, $2::timestamptz, v, r, e FROM unnest($3::text[], $4::int[], $5::int[]) AS u(v, r, e)`,
    [instanceId, periodEnd, entries.map(([v]) => v), entries.map(([, c]) => c.requests), entries.map(([, c]) => c.errors)],
  );
}

/** Every instance's counts per version over the window; `versions` limits it to those. */
export async function readVersionMetrics(db: Queryable, windowMs: number, versions?: readonly string[]): Promise<VersionMetrics[]> {
  const { rows } = await db.query<{ app_version: string; requests: string; errors: string }>(
    `SELECT app_version, sum(requests) AS requests, sum(errors) AS errors FROM request_metrics_by_version
     WHERE period_end > now() - $1::bigint * interval '1 millisecond' AND ($2::text[] IS NULL OR app_version = ANY($2::text[]))
     GROUP BY app_version ORDER BY sum(requests) DESC`,
    [windowMs, versions === undefined ? null : [...versions]],
  );
  return rows.map((row) => {
    const requests = Number(row.requests);
    const errors = Number(row.errors);
    return { version: row.app_version, requests, errors, errorRate: requests === 0 ? 0 : Number((errors / requests).toFixed(5)) };
  });
}
