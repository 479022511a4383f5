/**
 * Push notifications scheduled for later (runbook: Monthly Maintenance, T-72 hours, "Notify
 * users": `POST /admin/notifications/schedule`).
 *
 * Accepting one only writes a row: any API instance (or the CLI) can, and none needs the job
 * queue. A worker on any instance hands due rows to the queue — claiming them with FOR UPDATE
 * SKIP LOCKED and marking them `queued` in the same transaction as the enqueue — so each is
 * enqueued once, and the instance that accepted it may be long gone. The delivery job sends
 * it as a recorded notification job whose idempotency key is `schedule:<id>`: a retried
 * delivery resumes that one send instead of starting a second.
 *
 *   pending ──(due: a worker enqueues it)──▶ queued ──▶ sending ──▶ sent | partial | failed
 *   (partial and failed carry the cause in `error`, and the queue job fails with it)
 *   pending ──(DELETE /admin/notifications/:id)──▶ cancelled
 */
import type { Pool, PoolClient, Queryable } from '../db/pool.ts';
import { firstRow } from '../db/rows.ts';
import { describeError, ShipError } from '../errors.ts';
import {
  createNotificationJob,
  describeSendFailure,
  runNotificationJob,
  validateNotification,
  type NotificationData,
  type NotificationJob,
  type Priority,
  type PushSender,
  type RunOptions,
} from './notifications.ts';

/**
 * `sent`: every chunk went out. `partial`: some chunks failed (not delivered) and others went
 * out. `failed`: nothing went out — every chunk failed, or Expo refused the send. The last two
 * carry the cause in `error`.
 */
export const scheduledStatuses = ['pending', 'queued', 'sending', 'sent', 'partial', 'failed', 'cancelled'] as const;
export type ScheduledStatus = (typeof scheduledStatuses)[number];

/** How far ahead a notification may be scheduled. */
export const MAX_SCHEDULE_AHEAD_MS = 366 * 24 * 3_600_000;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** ISO 8601 with a date, a time and an explicit offset: `2026-03-01T02:00:00-08:00`, `…Z`. */
export const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;

export interface ScheduledNotification {
  readonly id: string;
  readonly scheduledFor: Date;
  readonly title: string;
  readonly body: string;
  readonly priority: Priority;
  readonly data: NotificationData | null;
  readonly purpose: string | null;
  readonly status: ScheduledStatus;
  readonly requestedBy: string;
  readonly createdAt: Date;
  readonly sentAt: Date | null;
  readonly cancelledAt: Date | null;
  readonly cancelledBy: string | null;
  readonly attempts: number;
  readonly error: string | null;
  /** The send it became, once it went out (`GET /admin/notifications/<jobId>`). */
  readonly jobId: string | null;
}

interface Row {
  id: string;
  scheduled_for: Date;
  title: string;
  body: string;
  priority: Priority;
  data: NotificationData | null;
  purpose: string | null;
  status: ScheduledStatus;
  requested_by: string;
  created_at: Date;
  sent_at: Date | null;
  cancelled_at: Date | null;
  cancelled_by: string | null;
  attempts: number;
  error: string | null;
  notification_job_id: string | null;
}

const COLUMNS =
  'id, scheduled_for, title, body, priority, data, purpose, status, requested_by, created_at, sent_at, cancelled_at, cancelled_by, attempts, error, notification_job_id';

/**
 * `scheduledFor` as a client sends it: an ISO 8601 time with an offset, in the future and at
 * most a year ahead. Throws SHIP_ERR_VALIDATION saying which rule it broke.
 */
export function parseScheduledFor(text: unknown, now: Date = new Date(), field = 'scheduledFor'): Date {
  if (typeof text !== 'string' || !ISO_WITH_OFFSET.test(text.trim())) {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `${field}: must be an ISO 8601 time with an offset, e.g. "2026-03-01T02:00:00-08:00" or "2026-03-01T10:00:00Z" (a time without an offset is ambiguous).`,
    );
  }
  const at = new Date(text.trim());
  if (Number.isNaN(at.getTime()) || !fieldsInRange(text.trim()))
    throw new ShipError('SHIP_ERR_VALIDATION', `${field}: "${text.slice(0, 40)}" is not a real date and time.`);
  if (at.getTime() <= now.getTime()) {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `${field}: ${at.toISOString()} is not in the future (it is now ${now.toISOString()}); to send now use POST /admin/notifications/send.`,
    );
  }
  if (at.getTime() - now.getTime() > MAX_SCHEDULE_AHEAD_MS)
    throw new ShipError('SHIP_ERR_VALIDATION', `${field}: ${at.toISOString()} is more than a year ahead.`);
  return at;
}

export interface NewScheduledNotification {
  readonly scheduledFor: Date;
  readonly title: string;
  readonly body: string;
  readonly priority?: Priority | undefined;
  readonly data?: NotificationData | undefined;
  /** Who asked: `admin-api`, `operator:<name>`, `run:<id>`. */
  readonly requestedBy: string;
  /** Scheduling again with the same purpose returns the first one instead of a second. */
  readonly purpose?: string | undefined;
}

/** Records a notification to send at `scheduledFor`; `created: false` when its purpose was scheduled before. */
export async function scheduleNotification(db: Queryable, input: NewScheduledNotification): Promise<{ notification: ScheduledNotification; created: boolean }> {
  validateNotification(input);
  const { rows } = await db.query<Row>(
    `INSERT INTO scheduled_notifications (scheduled_for, title, body, priority, data, requested_by, purpose)
     VALUES ($1::timestamptz, $2::text, $3::text, $4::text, $5::jsonb, $6::text, $7::text)
     ON CONFLICT (purpose) DO NOTHING
     RETURNING ${COLUMNS}`,
    [
      input.scheduledFor,
      input.title,
      input.body,
      input.priority ?? 'default',
      input.data === undefined ? null : JSON.stringify(input.data),
      input.requestedBy,
      input.purpose ?? null,
    ],
  );
  const row = rows[0];
  if (row) return { notification: toNotification(row), created: true };
  const existing = await db.query<Row>(`SELECT ${COLUMNS} FROM scheduled_notifications WHERE purpose = $1::text`, [input.purpose]);
  return { notification: toNotification(firstRow(existing.rows)), created: false };
}

export async function getScheduledNotification(db: Queryable, id: string): Promise<ScheduledNotification> {
  checkId(id);
  const { rows } = await db.query<Row>(`SELECT ${COLUMNS} FROM scheduled_notifications WHERE id = $1::uuid`, [id]);
  const row = rows[0];
  if (!row) throw notFound(id);
  return toNotification(row);
}

/**
 * Cancels a notification that has not gone out. Once a worker has taken it (queued or later)
 * it is too late: SHIP_ERR_TOO_LATE says what became of it.
 */
export async function cancelScheduledNotification(db: Queryable, id: string, cancelledBy: string): Promise<ScheduledNotification> {
  checkId(id);
  const { rows } = await db.query<Row>(
    `UPDATE scheduled_notifications SET status = 'cancelled', cancelled_at = now(), cancelled_by = $2::text
      WHERE id = $1::uuid AND status = 'pending'
      RETURNING ${COLUMNS}`,
    [id, cancelledBy],
  );
  const row = rows[0];
  if (row) return toNotification(row);
  const current = await getScheduledNotification(db, id);
  if (current.status === 'cancelled') return current;
  throw new ShipError(
    'SHIP_ERR_TOO_LATE',
    `Scheduled notification ${id} is already ${current.status} (it was due at ${current.scheduledFor.toISOString()}), so it can no longer be cancelled.` +
      (current.jobId ? ` Its send is ${current.jobId}: GET /admin/notifications/${current.jobId}.` : ''),
  );
}

/** Cancels every pending notification with a purpose starting with `prefix`; returns how many. */
export async function cancelScheduledByPurpose(db: Queryable, prefix: string, cancelledBy: string): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE scheduled_notifications SET status = 'cancelled', cancelled_at = now(), cancelled_by = $2::text
      WHERE status = 'pending' AND starts_with(purpose, $1::text)`,
    [prefix, cancelledBy],
  );
  return rowCount ?? 0;
}

export const listStatuses = ['pending', 'sent', 'partial', 'failed', 'cancelled', 'all'] as const;
export type ListStatus = (typeof listStatuses)[number];

/** One line of `GET /admin/notifications`: a scheduled notification, or a send made at once. */
export interface NotificationListItem {
  readonly id: string;
  readonly kind: 'scheduled' | 'immediate';
  readonly status: ScheduledStatus;
  readonly title: string;
  readonly body: string;
  readonly priority: Priority;
  readonly scheduledFor: Date | null;
  readonly createdAt: Date;
  readonly sentAt: Date | null;
  readonly requestedBy: string;
  readonly jobId: string | null;
  readonly recipients: number | null;
  readonly error: string | null;
}

const LIST_FILTER: Readonly<Record<ListStatus, readonly ScheduledStatus[] | null>> = {
  pending: ['pending', 'queued', 'sending'],
  sent: ['sent'],
  partial: ['partial'],
  failed: ['failed'],
  cancelled: ['cancelled'],
  all: null,
};

/** Scheduled notifications (pending ones first, soonest first) and then every other send, newest first. */
export async function listNotifications(db: Queryable, options: { status: ListStatus; limit: number }): Promise<NotificationListItem[]> {
  const { rows } = await db.query<{
    id: string;
    kind: 'scheduled' | 'immediate';
    status: ScheduledStatus;
    title: string;
    body: string;
    priority: Priority;
    scheduled_for: Date | null;
    created_at: Date;
    sent_at: Date | null;
    requested_by: string;
    job_id: string | null;
    recipients: number | null;
    error: string | null;
  }>(
    `SELECT * FROM (
       SELECT s.id, 'scheduled' AS kind, s.status, s.title, s.body, s.priority, s.scheduled_for, s.created_at, s.sent_at,
              s.requested_by, s.notification_job_id AS job_id, j.recipients, coalesce(s.error, j.error) AS error
         FROM scheduled_notifications s LEFT JOIN notification_jobs j ON j.id = s.notification_job_id
       UNION ALL
       SELECT j.id, 'immediate',
              CASE WHEN j.status = 'sending' THEN 'sending'
                   WHEN j.status = 'failed' OR c.failed > 0 THEN CASE WHEN c.went_out > 0 THEN 'partial' ELSE 'failed' END
                   ELSE 'sent' END,
              j.title, j.body, j.priority,
              NULL, j.created_at, j.finished_at, j.requested_by, j.id, j.recipients,
              coalesce(j.error, CASE WHEN c.failed > 0 THEN c.failed || ' of ' || j.chunk_count || ' chunk(s) failed, not delivered: ' || c.causes END)
         FROM notification_jobs j
         CROSS JOIN LATERAL (
           SELECT count(*) FILTER (WHERE status = 'failed') AS failed,
                  count(*) FILTER (WHERE status IN ('sent', 'in_doubt')) AS went_out,
                  string_agg(DISTINCT coalesce(error, 'no cause recorded'), '; ') FILTER (WHERE status = 'failed') AS causes
             FROM notification_chunks WHERE job_id = j.id
         ) c
        WHERE j.idempotency_key IS NULL OR NOT starts_with(j.idempotency_key, 'schedule:')
     ) n
     WHERE $1::text[] IS NULL OR n.status = ANY($1::text[])
     ORDER BY (n.status IN ('pending', 'queued')) DESC,
              CASE WHEN n.status IN ('pending', 'queued') THEN n.scheduled_for END ASC,
              coalesce(n.sent_at, n.scheduled_for, n.created_at) DESC
     LIMIT $2::int`,
    [LIST_FILTER[options.status], options.limit],
  );
  return rows.map((row) => ({
    id: row.id,
    kind: row.kind,
    status: row.status,
    title: row.title,
    body: row.body,
    priority: row.priority,
    scheduledFor: row.scheduled_for,
    createdAt: row.created_at,
    sentAt: row.sent_at,
    requestedBy: row.requested_by,
    jobId: row.job_id,
    recipients: row.recipients,
    error: row.error,
  }));
}

/**
 * Claims up to `limit` due notifications for the caller's transaction, skipping rows another
 * instance holds; the caller enqueues each and marks it with `markQueued` before committing.
 */
export async function claimDueNotifications(client: PoolClient, limit: number): Promise<string[]> {
  const { rows } = await client.query<{ id: string }>(
    `SELECT id FROM scheduled_notifications WHERE status = 'pending' AND scheduled_for <= now()
      ORDER BY scheduled_for LIMIT $1::int FOR UPDATE SKIP LOCKED`,
    [limit],
  );
  return rows.map((row) => row.id);
}

export async function markQueued(client: PoolClient, id: string, queueJobId: string | null): Promise<void> {
  await client.query(
    `UPDATE scheduled_notifications SET status = 'queued', queued_at = now(), queue_job_id = $2::text WHERE id = $1::uuid AND status = 'pending'`,
    [id, queueJobId],
  );
}

export type DeliveryOutcome =
  | { readonly outcome: 'skipped'; readonly status: ScheduledStatus; readonly error: string | null }
  | { readonly outcome: 'sent'; readonly job: NotificationJob }
  | { readonly outcome: 'partial' | 'failed'; readonly job: NotificationJob; readonly error: string };

/**
 * The delivery job's body. Safe to run again for the same notification (a retry, or a second
 * delivery of the job after its worker was presumed dead): it resumes the one recorded send.
 * Throws when the send did not finish, so the queue retries it; with `lastAttempt`, records
 * the failure instead of leaving the notification `sending`. A send that finished with chunks
 * failed is `partial` (some went out) or `failed` (none did), with the cause in `error`: the
 * push client has already retried them, so the caller fails the queue job for good.
 */
export async function deliverScheduledNotification(
  pool: Pool,
  sender: PushSender,
  id: string,
  options: RunOptions & { readonly lastAttempt: boolean },
): Promise<DeliveryOutcome> {
  checkId(id);
  const { rows } = await pool.query<Row>(
    `UPDATE scheduled_notifications SET status = 'sending', attempts = attempts + 1
      WHERE id = $1::uuid AND status IN ('queued', 'sending')
      RETURNING ${COLUMNS}`,
    [id],
  );
  const row = rows[0];
  if (!row) {
    const current = await getScheduledNotification(pool, id);
    return { outcome: 'skipped', status: current.status, error: current.error };
  }
  try {
    const { job: created } = await createNotificationJob(pool, {
      title: row.title,
      body: row.body,
      priority: row.priority,
      data: row.data ?? undefined,
      requestedBy: `scheduler:${id}`,
      idempotencyKey: `schedule:${id}`,
    });
    await pool.query('UPDATE scheduled_notifications SET notification_job_id = $2::uuid WHERE id = $1::uuid', [id, created.id]);
    const job = created.status === 'done' ? created : await runNotificationJob(pool, sender, created.id, options);
    if (job.status === 'sending')
      throw new ShipError('SHIP_ERR_PROVIDER_FAILED', `the send ${job.id} stopped before every chunk was settled; it is resumed on the next attempt`);
    // Chunks in doubt may have gone out; failed ones certainly did not.
    const wentOut = job.chunks.sent + job.chunks.inDoubt > 0;
    const failed = job.status === 'failed' || job.chunks.failed > 0;
    const outcome = !failed ? 'sent' : wentOut ? 'partial' : 'failed';
    const error = await describeSendFailure(pool, job);
    await pool.query(
      `UPDATE scheduled_notifications SET status = $2::text, sent_at = CASE WHEN $2::text IN ('sent', 'partial') THEN now() END, error = $3::text WHERE id = $1::uuid`,
      [id, outcome, error],
    );
    if (outcome === 'sent') return { outcome, job };
    return { outcome, job, error: error ?? `the send ${job.id} ended ${job.status} with ${job.chunks.failed} chunk(s) failed` };
  } catch (error) {
    const message = describeError(error).slice(0, 1000);
    await pool
      .query(`UPDATE scheduled_notifications SET error = $2::text, status = CASE WHEN $3::boolean THEN 'failed' ELSE status END WHERE id = $1::uuid`, [
        id,
        message,
        options.lastAttempt,
      ])
      .catch(() => undefined);
    throw error;
  }
}

/** `Date` rolls 2030-02-30 over into March; a time a person typed must mean what it says. */
function fieldsInRange(text: string): boolean {
  const [year, month, day, hour, minute, second] = (text.match(/\d+/g) ?? []).map(Number);
  if (year === undefined || month === undefined || day === undefined || hour === undefined || minute === undefined) return false;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth && hour <= 23 && minute <= 59 && (second ?? 0) <= 59;
}

function toNotification(row: Row): ScheduledNotification {
  return {
    id: row.id,
    scheduledFor: row.scheduled_for,
    title: row.title,
    body: row.body,
    priority: row.priority,
    data: row.data,
    purpose: row.purpose,
    status: row.status,
    requestedBy: row.requested_by,
    createdAt: row.created_at,
    sentAt: row.sent_at,
    cancelledAt: row.cancelled_at,
    cancelledBy: row.cancelled_by,
    attempts: row.attempts,
    error: row.error,
    jobId: row.notification_job_id,
  };
}

function checkId(id: string): void {
  if (!UUID_PATTERN.test(id))
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `"${id.slice(0, 60)}" is not a notification id (a UUID). \`shipshape notify list\` or GET /admin/notifications shows them.`,
    );
}

function notFound(id: string): ShipError {
  return new ShipError('SHIP_ERR_NOT_FOUND', `No scheduled notification ${id}. \`shipshape notify list\` or GET /admin/notifications shows them.`);
}
