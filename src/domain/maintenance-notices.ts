/**
 * The email part of announcing a maintenance window (runbook: Monthly Maintenance, T-72
 * hours, "Send email to all users").
 *
 * Announcing records one `maintenance_notices` row; a worker hands it to the job queue, and
 * the emails go out in batches (by user id) at MAINTENANCE_EMAIL_RATE per second, each batch
 * its own job that queues the next. Every (window, user) is recorded before its email is sent,
 * so a batch that is retried or delivered twice skips whoever it reached already: at most one
 * email per user, and a crash costs at most the email that was in flight. Cancelling the
 * notice stops the batches still to come. Accounts pending deletion and the smoke-test account
 * are left out.
 */
import type { Mailer } from '../adapters/mailer.ts';
import type { TokenBucket } from '../adapters/token-bucket.ts';
import type { Pool, PoolClient, Queryable } from '../db/pool.ts';
import { describeError } from '../errors.ts';

export type NoticeStatus = 'pending' | 'sending' | 'done' | 'cancelled';

export interface MaintenanceNotice {
  readonly windowStartsAt: Date;
  readonly windowEndsAt: Date;
  readonly subject: string;
  readonly body: string;
  readonly status: NoticeStatus;
  readonly emailsSent: number;
  readonly emailsFailed: number;
  readonly createdAt: Date;
  readonly createdBy: string;
}

interface Row {
  window_starts_at: Date;
  window_ends_at: Date;
  subject: string;
  body: string;
  status: NoticeStatus;
  emails_sent: number;
  emails_failed: number;
  created_at: Date;
  created_by: string;
}

const COLUMNS = 'window_starts_at, window_ends_at, subject, body, status, emails_sent, emails_failed, created_at, created_by';

/**
 * Records the notice for a window (its emails start with the next worker tick). Recording it
 * again is a no-op, except that a cancelled notice becomes pending again.
 */
export async function recordMaintenanceNotice(
  db: Queryable,
  input: { windowStartsAt: Date; windowEndsAt: Date; subject: string; body: string; createdBy: string },
): Promise<{ notice: MaintenanceNotice; created: boolean }> {
  const { rows } = await db.query<Row>(
    `INSERT INTO maintenance_notices AS n (window_starts_at, window_ends_at, subject, body, created_by)
     VALUES ($1::timestamptz, $2::timestamptz, $3::text, $4::text, $5::text)
     ON CONFLICT (window_starts_at) DO UPDATE SET status = 'pending', queued_at = NULL, finished_at = NULL
       WHERE n.status = 'cancelled'
     RETURNING ${COLUMNS}`,
    [input.windowStartsAt, input.windowEndsAt, input.subject, input.body, input.createdBy],
  );
  const row = rows[0];
  if (row) return { notice: toNotice(row), created: true };
  const existing = await getMaintenanceNotice(db, input.windowStartsAt);
  return { notice: existing!, created: false };
}

export async function getMaintenanceNotice(db: Queryable, windowStartsAt: Date): Promise<MaintenanceNotice | undefined> {
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM maintenance_notices WHERE window_starts_at = $1::timestamptz`, [windowStartsAt]);
  return rows[0] && toNotice(rows[0]);
}

/** Stops the emails still to go; returns whether there was something to stop. */
export async function cancelMaintenanceNotice(db: Queryable, windowStartsAt: Date): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE maintenance_notices SET status = 'cancelled', finished_at = now() WHERE window_starts_at = $1::timestamptz AND status IN ('pending', 'sending')`,
    [windowStartsAt],
  );
  return (rowCount ?? 0) > 0;
}

/** Pending notices, held for the caller's transaction; the caller enqueues each and marks it with `markNoticeQueued`. */
export async function claimPendingNotices(client: PoolClient, limit: number): Promise<Date[]> {
  const { rows } = await client.query<{ window_starts_at: Date }>(
    `SELECT window_starts_at FROM maintenance_notices WHERE status = 'pending' ORDER BY created_at LIMIT $1::int FOR UPDATE SKIP LOCKED`,
    [limit],
  );
  return rows.map((row) => row.window_starts_at);
}

export async function markNoticeQueued(client: PoolClient, windowStartsAt: Date): Promise<void> {
  await client.query(`UPDATE maintenance_notices SET status = 'sending', queued_at = now() WHERE window_starts_at = $1::timestamptz AND status = 'pending'`, [
    windowStartsAt,
  ]);
}

export interface BatchResult {
  readonly sent: number;
  readonly failed: number;
  /** Users this batch skipped because an earlier attempt already claimed them. */
  readonly skipped: number;
  /** Where the next batch starts (the last user id of this one). */
  readonly lastUserId: string | null;
  /** No users after this batch: the notice is done. */
  readonly done: boolean;
  readonly cancelled: boolean;
}

/** Emails the next `batchSize` users after `afterUserId`, one token of `bucket` per email. */
export async function sendNoticeEmailBatch(
  pool: Pool,
  mailer: Mailer,
  windowStartsAt: Date,
  options: { afterUserId: string | null; batchSize: number; bucket: TokenBucket; excludeEmail: string; signal?: AbortSignal | undefined },
): Promise<BatchResult> {
  const notice = await getMaintenanceNotice(pool, windowStartsAt);
  if (notice === undefined || notice.status === 'cancelled' || notice.status === 'done') {
    return { sent: 0, failed: 0, skipped: 0, lastUserId: options.afterUserId, done: notice?.status === 'done', cancelled: notice?.status !== 'done' };
  }
  const { rows: users } = await pool.query<{ id: string; email: string }>(
    `SELECT u.id, u.email FROM users u
      WHERE ($1::uuid IS NULL OR u.id > $1::uuid)
        AND lower(u.email) <> lower($2::text)
        AND NOT EXISTS (SELECT 1 FROM deletion_requests d WHERE d.user_id = u.id AND d.cancelled_at IS NULL)
      ORDER BY u.id LIMIT $3::int`,
    [options.afterUserId, options.excludeEmail, options.batchSize],
  );
  let sent = 0;
  let failed = 0;
  let skipped = 0;
  for (const user of users) {
    options.signal?.throwIfAborted();
    await options.bucket.take(1, options.signal);
    const { rowCount } = await pool.query(
      `INSERT INTO maintenance_notice_emails (window_starts_at, user_id) VALUES ($1::timestamptz, $2::uuid) ON CONFLICT DO NOTHING`,
      [windowStartsAt, user.id],
    );
    if (!rowCount) {
      skipped += 1;
      continue;
    }
    try {
      await mailer.send({ to: user.email, subject: notice.subject, text: notice.body });
      await pool.query('UPDATE maintenance_notice_emails SET sent_at = now() WHERE window_starts_at = $1::timestamptz AND user_id = $2::uuid', [
        windowStartsAt,
        user.id,
      ]);
      sent += 1;
    } catch (error) {
      await pool.query('UPDATE maintenance_notice_emails SET error = $3::text WHERE window_starts_at = $1::timestamptz AND user_id = $2::uuid', [
        windowStartsAt,
        user.id,
        describeError(error).slice(0, 500),
      ]);
      failed += 1;
    }
  }
  const done = users.length < options.batchSize;
  await pool.query(
    `UPDATE maintenance_notices SET emails_sent = emails_sent + $2::int, emails_failed = emails_failed + $3::int,
            status = CASE WHEN $4::boolean AND status = 'sending' THEN 'done' ELSE status END,
            finished_at = CASE WHEN $4::boolean AND status = 'sending' THEN now() ELSE finished_at END
      WHERE window_starts_at = $1::timestamptz`,
    [windowStartsAt, sent, failed, done],
  );
  return { sent, failed, skipped, lastUserId: users.at(-1)?.id ?? options.afterUserId, done, cancelled: false };
}

function toNotice(row: Row): MaintenanceNotice {
  return {
    windowStartsAt: row.window_starts_at,
    windowEndsAt: row.window_ends_at,
    subject: row.subject,
    body: row.body,
    status: row.status,
    emailsSent: row.emails_sent,
    emailsFailed: row.emails_failed,
    createdAt: row.created_at,
    createdBy: row.created_by,
  };
}
