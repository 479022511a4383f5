/**
 * Work that failed recently, for the watchdog's "failed scheduled jobs" and "failed
 * notifications" alerts and `shipshape health`: read-only, from our tables and pg-boss's.
 *
 * - A schedule (not paused) whose last run failed, or whose last occurrence was skipped,
 *   until a later run succeeds; and jobs of the schedule and notice-email queues that pg-boss
 *   gave up on (retries exhausted) within the look-back.
 * - Push sends that failed, or finished with chunks failed or in doubt, and scheduled
 *   notifications marked failed, within the look-back.
 */
import type { Queryable } from '../../db/pool.ts';
import { quoteIdent } from '../../db/pool.ts';
import { QUEUE_SCHEMA, queueNames } from '../../db/queue.ts';

export interface FailedScheduledJobs {
  /** Schedules whose last outcome was a failure, with that outcome. */
  readonly schedules: ReadonlyArray<{ readonly name: string; readonly outcome: string }>;
  /** Queue jobs pg-boss failed in the look-back. */
  readonly queueJobs: number;
}

export interface FailedNotifications {
  readonly sends: number;
  readonly scheduled: number;
  /** A few titles, for the alert text. */
  readonly titles: readonly string[];
}

export async function readFailedScheduledJobs(db: Queryable, lookbackMs: number): Promise<FailedScheduledJobs> {
  const { rows: schedules } = await db.query<{ name: string; outcome: string | null }>(
    `SELECT name, last_outcome AS outcome FROM schedules WHERE NOT paused AND last_outcome_ok = false ORDER BY name`,
  );
  const { rows: installed } = await db.query<{ present: boolean }>(`SELECT to_regclass($1::text) IS NOT NULL AS present`, [`${QUEUE_SCHEMA}.job`]);
  let queueJobs = 0;
  if (installed[0]?.present) {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${quoteIdent(QUEUE_SCHEMA)}.job
        WHERE state = 'failed' AND name = ANY($1::text[]) AND completed_on > now() - $2::bigint * interval '1 millisecond'`,
      [[queueNames.schedule, queueNames.noticeEmails], lookbackMs],
    );
    queueJobs = rows[0]?.n ?? 0;
  }
  return { schedules: schedules.map((row) => ({ name: row.name, outcome: row.outcome ?? 'failed' })), queueJobs };
}

export async function readFailedNotifications(db: Queryable, lookbackMs: number): Promise<FailedNotifications> {
  const { rows } = await db.query<{ kind: 'send' | 'scheduled'; title: string }>(
    `SELECT 'send' AS kind, j.title FROM notification_jobs j
      WHERE j.finished_at > now() - $1::bigint * interval '1 millisecond'
        AND (j.status = 'failed' OR EXISTS (SELECT 1 FROM notification_chunks c WHERE c.job_id = j.id AND c.status IN ('failed', 'in_doubt')))
     UNION ALL
     SELECT 'scheduled', n.title FROM scheduled_notifications n
      WHERE n.status IN ('failed', 'partial') AND coalesce(n.sent_at, n.queued_at, n.scheduled_for) > now() - $1::bigint * interval '1 millisecond'
        AND (n.notification_job_id IS NULL OR NOT EXISTS (SELECT 1 FROM notification_jobs j WHERE j.id = n.notification_job_id AND j.finished_at IS NOT NULL))`,
    [lookbackMs],
  );
  return {
    sends: rows.filter((row) => row.kind === 'send').length,
    scheduled: rows.filter((row) => row.kind === 'scheduled').length,
    titles: [...new Set(rows.map((row) => row.title))].slice(0, 3),
  };
}

/** One line naming what failed, or null when nothing did. */
export function describeFailedScheduledJobs(failed: FailedScheduledJobs): string | null {
  const parts: string[] = [];
  if (failed.schedules.length > 0) parts.push(`last run failed: ${failed.schedules.map((s) => `${s.name} (${s.outcome.slice(0, 160)})`).join('; ')}`);
  if (failed.queueJobs > 0) parts.push(`${failed.queueJobs} queued job(s) failed after their retries`);
  return parts.length === 0 ? null : parts.join('; ');
}

export function describeFailedNotifications(failed: FailedNotifications): string | null {
  const count = failed.sends + failed.scheduled;
  if (count === 0) return null;
  return `${count} notification send(s) failed or left chunks failed or in doubt: ${failed.titles.map((title) => `"${title.slice(0, 80)}"`).join(', ')}`;
}
