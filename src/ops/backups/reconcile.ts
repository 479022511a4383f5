/**
 * Reconciling a restored database with what the replaced one did after the backup.
 *
 * A restored database brings back its job queue and its notification records as they were
 * when the backup was taken. Work that was done after that — a scheduled push sent, a
 * maintenance notice emailed, a queue job finished, an admin token revoked — would otherwise be
 * done again (or undone): the scheduler would find the push `pending` and due, and send it a
 * second time. So just before the restored database goes live, while the replaced one is
 * already out of reach of the application (renamed to `<db>__pre_restore_<run>`), the outcome
 * of every such piece of work is copied from the replaced database into the restored one:
 *
 *   scheduled_notifications   pending/queued/sending here, settled there → settled here too;
 *                             still in flight there → marked failed here, never re-sent blind
 *   notification_jobs/chunks  sending here, done/failed there → the same here
 *   maintenance_notices       pending/sending here, done/cancelled there → the same here, and
 *   maintenance_notice_emails the addresses already emailed are recorded here (no second email)
 *   shipshape_queue.job       unfinished here, finished there (or already purged there) → finished
 *   schedules                 an occurrence enqueued there after the backup → not enqueued again
 *   admin_tokens              revoked there → revoked here
 *
 * Rows that only the replaced database has (created after the backup) stay there: the restore
 * brings back the data as it was, and the replaced database is kept for anyone who needs them.
 * Idempotent: run again, it changes nothing more. Tables either side lacks are skipped.
 */
import type { Pool } from '../../db/pool.ts';

export interface ReconcileResult {
  readonly scheduledNotifications: number;
  readonly notificationJobs: number;
  readonly maintenanceNotices: number;
  readonly noticeEmails: number;
  readonly queueJobs: number;
  readonly schedules: number;
  readonly revokedTokens: number;
}

/** Copies the outcome of work done in `replaced` (after the backup) into `restored`. */
export async function reconcileRestored(restored: Pool, replaced: Pool, runId: string): Promise<ReconcileResult> {
  const has = async (pool: Pool, table: string) =>
    (await pool.query<{ found: boolean }>('SELECT to_regclass($1::text) IS NOT NULL AS found', [table])).rows[0]?.found === true;
  const both = async (table: string) => (await has(restored, table)) && (await has(replaced, table));

  let scheduledNotifications = 0;
  let notificationJobs = 0;
  if (await both('notification_jobs')) {
    const open = await restored.query<{ id: string }>("SELECT id::text FROM notification_jobs WHERE status = 'sending'");
    if (open.rows.length > 0) {
      const settled = await replaced.query<{
        id: string;
        status: string;
        error: string | null;
        finished_at: Date | null;
        recipients: number;
        chunk_count: number;
      }>("SELECT id::text, status, error, finished_at, recipients, chunk_count FROM notification_jobs WHERE id = ANY($1::uuid[]) AND status <> 'sending'", [
        open.rows.map((row) => row.id),
      ]);
      for (const job of settled.rows) {
        await restored.query('UPDATE notification_jobs SET status = $2::text, error = $3::text, finished_at = $4::timestamptz WHERE id = $1::uuid', [
          job.id,
          job.status,
          job.error,
          job.finished_at,
        ]);
        const chunks = await replaced.query<{ seq: number; status: string; sent_at: Date | null; error: string | null }>(
          'SELECT seq, status, sent_at, error FROM notification_chunks WHERE job_id = $1::uuid',
          [job.id],
        );
        for (const chunk of chunks.rows) {
          await restored.query(
            'UPDATE notification_chunks SET status = $3::text, sent_at = $4::timestamptz, error = $5::text WHERE job_id = $1::uuid AND seq = $2::int',
            [job.id, chunk.seq, chunk.status, chunk.sent_at, chunk.error],
          );
        }
        notificationJobs += 1;
      }
    }
  }
  if (await both('scheduled_notifications')) {
    const open = await restored.query<{ id: string }>("SELECT id::text FROM scheduled_notifications WHERE status IN ('pending', 'queued', 'sending')");
    if (open.rows.length > 0) {
      const moved = await replaced.query<{
        id: string;
        status: string;
        queued_at: Date | null;
        sent_at: Date | null;
        cancelled_at: Date | null;
        cancelled_by: string | null;
        error: string | null;
        attempts: number;
        notification_job_id: string | null;
      }>(
        `SELECT id::text, status, queued_at, sent_at, cancelled_at, cancelled_by, error, attempts, notification_job_id::text
           FROM scheduled_notifications WHERE id = ANY($1::uuid[]) AND status <> 'pending'`,
        [open.rows.map((row) => row.id)],
      );
      for (const row of moved.rows) {
        const inFlight = row.status === 'queued' || row.status === 'sending';
        await restored.query(
          `UPDATE scheduled_notifications
              SET status = $2::text, queued_at = $3::timestamptz, sent_at = $4::timestamptz, cancelled_at = $5::timestamptz, cancelled_by = $6::text,
                  error = $7::text, attempts = $8::int,
                  notification_job_id = (SELECT j.id FROM notification_jobs j WHERE j.id = $9::uuid)
            WHERE id = $1::uuid AND status IN ('pending', 'queued', 'sending')`,
          [
            row.id,
            inFlight ? 'failed' : row.status,
            row.queued_at,
            row.sent_at,
            row.cancelled_at,
            row.cancelled_by,
            inFlight
              ? `was being sent when the database was restored (run ${runId}); not sent again — whether it reached everyone is in the replaced database`
              : row.error,
            row.attempts,
            row.notification_job_id,
          ],
        );
        scheduledNotifications += 1;
      }
    }
  }

  let maintenanceNotices = 0;
  let noticeEmails = 0;
  if (await both('maintenance_notices')) {
    const open = await restored.query<{ at: Date }>("SELECT window_starts_at AS at FROM maintenance_notices WHERE status IN ('pending', 'sending')");
    if (open.rows.length > 0) {
      const settled = await replaced.query<{
        at: Date;
        status: string;
        queued_at: Date | null;
        finished_at: Date | null;
        emails_sent: number;
        emails_failed: number;
      }>(
        "SELECT window_starts_at AS at, status, queued_at, finished_at, emails_sent, emails_failed FROM maintenance_notices WHERE window_starts_at = ANY($1::timestamptz[]) AND status <> 'pending'",
        [open.rows.map((row) => row.at)],
      );
      for (const notice of settled.rows) {
        // Still sending there: the claims below keep the addresses already emailed from a second email.
        await restored.query(
          'UPDATE maintenance_notices SET status = $2::text, queued_at = $3::timestamptz, finished_at = $4::timestamptz, emails_sent = $5::int, emails_failed = $6::int WHERE window_starts_at = $1::timestamptz',
          [notice.at, notice.status, notice.queued_at, notice.finished_at, notice.emails_sent, notice.emails_failed],
        );
        maintenanceNotices += 1;
      }
      if (await both('maintenance_notice_emails')) {
        const emailed = await replaced.query<{ at: Date; user_id: string; claimed_at: Date; sent_at: Date | null; error: string | null }>(
          'SELECT window_starts_at AS at, user_id::text, claimed_at, sent_at, error FROM maintenance_notice_emails WHERE window_starts_at = ANY($1::timestamptz[])',
          [open.rows.map((row) => row.at)],
        );
        for (const email of emailed.rows) {
          const { rowCount } = await restored.query(
            `INSERT INTO maintenance_notice_emails (window_starts_at, user_id, claimed_at, sent_at, error)
             SELECT $1::timestamptz, u.id, $3::timestamptz, $4::timestamptz, $5::text FROM users u WHERE u.id = $2::uuid
             ON CONFLICT (window_starts_at, user_id) DO UPDATE SET sent_at = coalesce(maintenance_notice_emails.sent_at, EXCLUDED.sent_at), claimed_at = EXCLUDED.claimed_at`,
            [email.at, email.user_id, email.claimed_at, email.sent_at, email.error],
          );
          noticeEmails += rowCount ?? 0;
        }
      }
    }
  }

  let queueJobs = 0;
  if (await both('shipshape_queue.job')) {
    const open = await restored.query<{ id: string; name: string }>("SELECT id::text, name FROM shipshape_queue.job WHERE state < 'completed'");
    if (open.rows.length > 0) {
      const there = await replaced.query<{ id: string; state: string; completed_on: Date | null }>(
        'SELECT id::text, state::text, completed_on FROM shipshape_queue.job WHERE id = ANY($1::uuid[])',
        [open.rows.map((row) => row.id)],
      );
      const byId = new Map(there.rows.map((row) => [row.id, row]));
      for (const job of open.rows) {
        const other = byId.get(job.id);
        // Absent there: it finished and pg-boss purged it since. Still unfinished there: leave it to run.
        if (other !== undefined && !['completed', 'cancelled', 'failed'].includes(other.state)) continue;
        await restored.query(
          `UPDATE shipshape_queue.job SET state = $3::shipshape_queue.job_state, completed_on = coalesce($4::timestamptz, now())
            WHERE name = $1::text AND id = $2::uuid AND state < 'completed'`,
          [job.name, job.id, other?.state ?? 'completed', other?.completed_on ?? null],
        );
        queueJobs += 1;
      }
    }
  }

  let schedules = 0;
  if (await both('schedules')) {
    const later = await replaced.query<{
      name: string;
      next: Date | null;
      notice: Date | null;
      last_occurrence: Date | null;
      last_enqueued: Date | null;
      outcome: string | null;
      outcome_at: Date | null;
    }>(
      `SELECT name, next_occurrence_at AS next, notice_enqueued_for AS notice, last_occurrence_at AS last_occurrence, last_enqueued_at AS last_enqueued,
              last_outcome AS outcome, last_outcome_at AS outcome_at
         FROM schedules WHERE last_enqueued_at IS NOT NULL OR notice_enqueued_for IS NOT NULL`,
    );
    for (const row of later.rows) {
      const { rowCount } = await restored.query(
        `UPDATE schedules SET next_occurrence_at = $2::timestamptz, notice_enqueued_for = $3::timestamptz, last_occurrence_at = $4::timestamptz,
                last_enqueued_at = $5::timestamptz, last_outcome = $6::text, last_outcome_at = $7::timestamptz
          WHERE name = $1::text AND NOT paused
            AND (last_enqueued_at IS DISTINCT FROM $5::timestamptz OR notice_enqueued_for IS DISTINCT FROM $3::timestamptz)
            AND coalesce(last_enqueued_at, '-infinity') <= coalesce($5::timestamptz, '-infinity')`,
        [row.name, row.next, row.notice, row.last_occurrence, row.last_enqueued, row.outcome, row.outcome_at],
      );
      schedules += rowCount ?? 0;
    }
  }

  let revokedTokens = 0;
  if (await both('admin_tokens')) {
    const revoked = await replaced.query<{ id: string; revoked_at: Date; revoked_by: string | null }>(
      'SELECT id::text, revoked_at, revoked_by FROM admin_tokens WHERE revoked_at IS NOT NULL',
    );
    for (const token of revoked.rows) {
      const { rowCount } = await restored.query(
        'UPDATE admin_tokens SET revoked_at = $2::timestamptz, revoked_by = $3::text WHERE id = $1::uuid AND revoked_at IS NULL',
        [token.id, token.revoked_at, token.revoked_by],
      );
      revokedTokens += rowCount ?? 0;
    }
  }

  return { scheduledNotifications, notificationJobs, maintenanceNotices, noticeEmails, queueJobs, schedules, revokedTokens };
}
