/**
 * Grandfather-father-son retention: keep the newest good backup of each of the last N days
 * that have one, of each of the last N ISO weeks, and of each of the last N months — and
 * always the newest good backup, whatever the policy says, so a policy of zeros can never
 * leave a database without a backup.
 *
 * Only good backups earn a place. Incomplete ones (a dump without a manifest) are removed
 * once older than a day — younger ones may be a backup still being written — and damaged
 * or failed ones are removed as useless. Pure: it decides, the caller deletes.
 */
import type { BackupEntry } from './catalog.ts';

export interface RetentionPolicy {
  readonly daily: number;
  readonly weekly: number;
  readonly monthly: number;
}

export interface RetentionDecision {
  readonly id: string;
  readonly keep: boolean;
  /** Why: "newest good backup", "daily 2026-11-27", "weekly 2026-W48", "incomplete for more than a day"… */
  readonly reasons: readonly string[];
}

/** Incomplete backups younger than this may still be uploading. */
export const INCOMPLETE_GRACE_MS = 24 * 60 * 60 * 1_000;

export function planRetention(
  entries: ReadonlyArray<Pick<BackupEntry, 'id' | 'state' | 'createdAt'>>,
  policy: RetentionPolicy,
  now: Date,
): RetentionDecision[] {
  const reasons = new Map<string, string[]>(entries.map((entry) => [entry.id, []]));
  const good = entries.filter((entry) => entry.state === 'good').sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  const newest = good[0];
  if (newest !== undefined) reasons.get(newest.id)?.push('newest good backup');
  keepNewestPerPeriod(good, policy.daily, dayOf, 'daily', reasons);
  keepNewestPerPeriod(good, policy.weekly, isoWeekOf, 'weekly', reasons);
  keepNewestPerPeriod(good, policy.monthly, monthOf, 'monthly', reasons);

  return entries.map((entry) => {
    const kept = reasons.get(entry.id) ?? [];
    if (kept.length > 0) return { id: entry.id, keep: true, reasons: kept };
    if (entry.state === 'incomplete' && now.getTime() - entry.createdAt.getTime() < INCOMPLETE_GRACE_MS) {
      return { id: entry.id, keep: true, reasons: ['incomplete but less than a day old (may still be uploading)'] };
    }
    const why =
      entry.state === 'good'
        ? 'outside the retention policy'
        : entry.state === 'incomplete'
          ? 'incomplete for more than a day'
          : entry.state === 'failed-verification'
            ? 'failed its latest verification'
            : 'damaged (unreadable manifest or missing dump)';
    return { id: entry.id, keep: false, reasons: [why] };
  });
}

function keepNewestPerPeriod(
  newestFirst: ReadonlyArray<Pick<BackupEntry, 'id' | 'createdAt'>>,
  count: number,
  periodOf: (date: Date) => string,
  label: string,
  reasons: Map<string, string[]>,
): void {
  const seen = new Set<string>();
  for (const entry of newestFirst) {
    if (seen.size >= count) return;
    const period = periodOf(entry.createdAt);
    if (seen.has(period)) continue;
    seen.add(period);
    reasons.get(entry.id)?.push(`${label} ${period}`);
  }
}

export function dayOf(date: Date): string {
  return date.toISOString().slice(0, 10);
}

export function monthOf(date: Date): string {
  return date.toISOString().slice(0, 7);
}

/** ISO 8601 week, e.g. "2026-W48" (weeks start on Monday; week 1 holds the year's first Thursday). */
export function isoWeekOf(date: Date): string {
  const day = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
  const weekday = day.getUTCDay() === 0 ? 7 : day.getUTCDay();
  day.setUTCDate(day.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((day.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${day.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}
