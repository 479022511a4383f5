/**
 * Push notification sends as recorded jobs (runbook: Emergency App Disable, step 5, and
 * `POST /admin/notifications/send`).
 *
 * Creating a job freezes its audience: every active device of every user who has not turned
 * notifications off becomes a row of `notification_deliveries`, numbered into chunks of 100
 * (Expo's per-request maximum), in the same transaction that records the job. Sending then
 * walks the chunks; a resumed job sends to exactly the audience that was planned.
 *
 * ## At most once
 * Expo's send endpoint has no idempotency key: a request that reached Expo and is sent again
 * is delivered again. We choose at-most-once: no device ever gets a notification twice, and a
 * crash may cost the devices of the requests that were in flight their notification.
 *
 * A runner claims a chunk (`pending → claimed`, with `FOR UPDATE SKIP LOCKED`, so two runners
 * never hold the same chunk), waits for the rate limit, then commits `claimed → sending`
 * immediately before each HTTP request, and `sending → sent` together with the tickets (and
 * the devices they show gone) in one transaction after Expo answers:
 *
 * - Expo answered with tickets → `sent`.
 * - Expo answered 429/5xx, or the connection was refused → Expo took nothing (its contract for
 *   whole-request errors): back to `claimed`, retried with backoff; after the last retry →
 *   `failed` (certainly not delivered; `resume --retry-failed` sends it again).
 * - Another 4xx → `failed`. A 401/403 stops the whole job (`failed`): every chunk would fail
 *   alike; the chunk goes back to `pending`.
 * - No answer (timeout, connection reset) → `in_doubt`: it may have been delivered, so it is
 *   never sent again.
 * - The process died: its `claimed` chunks were certainly not sent and go back to `pending`;
 *   its `sending` chunks become `in_doubt`. So a crash costs at most `concurrency` requests'
 *   worth of devices (default 4 × 100) their notification, and never anyone a duplicate.
 *
 * Ownership of a job is a heartbeat: a runner that stops beating for 30 s (or whose process is
 * known to be dead) is presumed gone, and whoever resumes the job settles its chunks as above
 * first. A slow runner that was presumed dead cannot send what it no longer owns: moving a
 * chunk to `sending` requires still being its claimer.
 */
import { randomUUID } from 'node:crypto';
import type { ExpoMessage, ExpoPriority, ExpoTicket, JsonValue, SendOptions, SendOutcome } from '../adapters/expo-push.ts';
import { withTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { firstRow } from '../db/rows.ts';
import { describeError, ShipError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { deactivateDevices } from './devices.ts';

export const priorities = ['default', 'normal', 'high'] as const satisfies readonly ExpoPriority[];
export type Priority = (typeof priorities)[number];
export type NotificationData = { readonly [key: string]: JsonValue };

export const CHUNK_SIZE = 100;
/** A runner whose heartbeat is older than this is presumed gone. */
export const STALE_AFTER_MS = 30_000;
const HEARTBEAT_MS = 5_000;
const DEFAULT_CONCURRENCY = 4;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const IN_DOUBT_AFTER_CRASH = 'the process sending this chunk stopped before recording Expo’s answer; not sent again, so no device gets it twice';

/** What the send needs from Expo; `ExpoPushClient` provides it. */
export interface PushSender {
  send(messages: readonly ExpoMessage[], options?: SendOptions): Promise<SendOutcome>;
}

export interface NotificationRequest {
  readonly title: string;
  readonly body: string;
  readonly priority?: Priority | undefined;
  /** Delivered to the app with the notification (Expo `data`); a JSON object. */
  readonly data?: NotificationData | undefined;
  /** Only these users; omitted → every user with notifications enabled. */
  readonly userIds?: readonly string[] | undefined;
  /** Who asked: `admin-api`, `operator:<name>`, `scheduler:<id>`. */
  readonly requestedBy: string;
  /** The same key always means the same job: asking again returns it instead of sending twice. */
  readonly idempotencyKey?: string | undefined;
}

export type JobStatus = 'sending' | 'done' | 'failed';

export interface NotificationJob {
  readonly id: string;
  /** `sending` until every chunk is settled; `done` then (even with failed chunks); `failed` when Expo refused the job as a whole. */
  readonly status: JobStatus;
  readonly title: string;
  readonly body: string;
  readonly priority: Priority;
  readonly data: NotificationData | null;
  readonly requestedBy: string;
  readonly createdAt: Date;
  readonly finishedAt: Date | null;
  readonly error: string | null;
  /** Devices in the frozen audience. */
  readonly recipients: number;
  /** `sending`: claimed by a runner, waiting for the rate limit or awaiting Expo's answer. */
  readonly chunks: {
    readonly total: number;
    readonly pending: number;
    readonly sending: number;
    readonly sent: number;
    readonly failed: number;
    readonly inDoubt: number;
  };
  readonly tickets: { readonly ok: number; readonly error: number };
  readonly receipts: { readonly ok: number; readonly error: number; readonly pending: number };
  /** Deliveries Expo answered with DeviceNotRegistered (their devices are deactivated). */
  readonly deviceNotRegistered: number;
}

/** The process running a job, as recorded for others to judge whether it is still there. */
export interface RunnerIdentity {
  readonly pid: number;
  readonly host: string;
  readonly processStart?: string | undefined;
  /** Tells apart two runners in one process. */
  readonly instance: string;
}

export interface RunOptions {
  readonly runner: RunnerIdentity;
  /** True when a recorded runner is certainly gone (its process died), so its job can be taken over at once. */
  readonly isGone?: ((runner: RunnerIdentity) => boolean) | undefined;
  /** Stops claiming chunks; chunks in flight are finished and recorded. The job stays resumable. */
  readonly signal?: AbortSignal | undefined;
  /** Requests in flight at once; also the most chunks a crash can leave in doubt. */
  readonly concurrency?: number | undefined;
  /** Send chunks that failed earlier (they were certainly not delivered) again. */
  readonly retryFailed?: boolean | undefined;
  readonly logger?: Logger | undefined;
  readonly onProgress?: ((progress: { readonly settledChunks: number; readonly totalChunks: number }) => void) | undefined;
  readonly heartbeatMs?: number | undefined;
}

/** Checks what Expo and the devices will accept; throws SHIP_ERR_VALIDATION naming the field. */
export function validateNotification(request: Pick<NotificationRequest, 'title' | 'body' | 'data' | 'priority' | 'userIds'>): void {
  const problems: string[] = [];
  if (request.title.trim().length === 0 || request.title.length > 200) problems.push('title: must be 1-200 characters');
  if (request.body.trim().length === 0 || request.body.length > 2000) problems.push('body: must be 1-2000 characters');
  if (request.priority !== undefined && !priorities.includes(request.priority)) problems.push('priority: must be default, normal or high');
  if (request.data !== undefined && (typeof request.data !== 'object' || request.data === null || Array.isArray(request.data))) {
    problems.push('data: must be a JSON object');
  }
  // Apple and Google refuse payloads over 4 KiB; leave room for what Expo adds.
  const bytes = Buffer.byteLength(JSON.stringify({ title: request.title, body: request.body, data: request.data ?? {} }));
  if (bytes > 3_800) problems.push(`title, body and data together are ${bytes} bytes; the limit is 3800 (push payloads max out at 4 KiB)`);
  if (request.userIds?.some((id) => !UUID_PATTERN.test(id))) problems.push('userIds: must be user ids (UUIDs)');
  if (problems.length > 0) throw new ShipError('SHIP_ERR_VALIDATION', problems.join('; '));
}

/**
 * Records a send and freezes its audience. With an idempotency key already used, returns that
 * job (`created: false`) instead of recording another.
 */
export async function createNotificationJob(pool: Pool, request: NotificationRequest): Promise<{ job: NotificationJob; created: boolean }> {
  validateNotification(request);
  const id = await withTransaction(pool, async (client) => {
    const { rows } = await client.query<{ id: string }>(
      `INSERT INTO notification_jobs (idempotency_key, title, body, priority, data, audience, requested_by)
       VALUES ($1::text, $2::text, $3::text, $4::text, $5::jsonb, $6::uuid[], $7::text)
       ON CONFLICT (idempotency_key) DO NOTHING
       RETURNING id`,
      [
        request.idempotencyKey ?? null,
        request.title,
        request.body,
        request.priority ?? 'default',
        request.data === undefined ? null : JSON.stringify(request.data),
        request.userIds ?? null,
        request.requestedBy,
      ],
    );
    const jobId = rows[0]?.id;
    if (jobId === undefined) return undefined;
    await client.query(
      `INSERT INTO notification_deliveries (job_id, seq, token, user_id)
       SELECT $1::uuid, ((row_number() OVER (ORDER BY d.token)) - 1) / $3::int, d.token, d.user_id
         FROM devices d LEFT JOIN user_preferences p ON p.user_id = d.user_id
        WHERE d.deactivated_at IS NULL
          AND coalesce(p.notifications_enabled, true)
          AND ($2::uuid[] IS NULL OR d.user_id = ANY($2::uuid[]))`,
      [jobId, request.userIds ?? null, CHUNK_SIZE],
    );
    await client.query('INSERT INTO notification_chunks (job_id, seq) SELECT DISTINCT job_id, seq FROM notification_deliveries WHERE job_id = $1::uuid', [
      jobId,
    ]);
    // An empty audience is a finished send.
    await client.query(
      `UPDATE notification_jobs j SET
          recipients  = (SELECT count(*) FROM notification_deliveries WHERE job_id = j.id),
          chunk_count = (SELECT count(*) FROM notification_chunks WHERE job_id = j.id),
          status      = CASE WHEN EXISTS (SELECT 1 FROM notification_chunks WHERE job_id = j.id) THEN 'sending' ELSE 'done' END,
          finished_at = CASE WHEN EXISTS (SELECT 1 FROM notification_chunks WHERE job_id = j.id) THEN NULL ELSE now() END
        WHERE id = $1::uuid`,
      [jobId],
    );
    return jobId;
  });
  if (id !== undefined) return { job: await getNotificationJob(pool, id), created: true };
  const { rows } = await pool.query<{ id: string }>('SELECT id FROM notification_jobs WHERE idempotency_key = $1::text', [request.idempotencyKey]);
  return { job: await getNotificationJob(pool, firstRow(rows).id), created: false };
}

/**
 * Sends a job's pending chunks until none is left (or `signal` stops it) and returns the job.
 * Safe to call for a job that crashed midway, was interrupted, or is finished (a no-op then).
 * Throws SHIP_ERR_LOCKED while another live process is sending it.
 */
export async function runNotificationJob(pool: Pool, sender: PushSender, jobId: string, options: RunOptions): Promise<NotificationJob> {
  checkJobId(jobId);
  if ((await claimJob(pool, jobId, options)) === 'finished') return getNotificationJob(pool, jobId);
  const job = await getNotificationJob(pool, jobId);
  const runnerJson = JSON.stringify(options.runner);
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) stop.abort();
  let fatal: string | undefined;
  let settled = job.chunks.total - job.chunks.pending;

  const heartbeat = setInterval(() => {
    pool
      .query('UPDATE notification_jobs SET heartbeat_at = now() WHERE id = $1::uuid AND runner = $2::jsonb', [jobId, runnerJson])
      .then(({ rowCount }) => {
        if (rowCount) return;
        // Someone presumed us dead and took over; claiming more would only compete with them.
        options.logger?.warn({ job: jobId }, 'another process took over this notification job; stopping');
        stop.abort();
      })
      .catch((error: unknown) => options.logger?.warn({ job: jobId, err: describeError(error) }, 'notification heartbeat failed'));
  }, options.heartbeatMs ?? HEARTBEAT_MS);
  heartbeat.unref();

  const message = (to: string): ExpoMessage => ({
    to,
    title: job.title,
    body: job.body,
    priority: job.priority,
    sound: 'default',
    ...(job.data === null ? {} : { data: job.data }),
  });

  const worker = async (): Promise<void> => {
    while (!stop.signal.aborted) {
      const chunk = await claimChunk(pool, jobId, options.runner.instance);
      if (chunk === undefined) return;
      const { rows } = await pool.query<{ token: string }>(
        'SELECT token FROM notification_deliveries WHERE job_id = $1::uuid AND seq = $2::int ORDER BY token',
        [jobId, chunk.seq],
      );
      const tokens = rows.map((row) => row.token);
      const hooks = {
        // The last word before the request leaves: from here on it may reach Expo.
        beforeRequest: async () => (await moveChunk(pool, jobId, chunk.seq, options.runner.instance, ['claimed'], 'sending')) === 1,
        afterRefused: async () => void (await moveChunk(pool, jobId, chunk.seq, options.runner.instance, ['sending'], 'claimed')),
      };
      const outcome =
        tokens.length === 0
          ? ({ kind: 'accepted', tickets: [] } satisfies SendOutcome)
          : await sender.send(tokens.map(message), { signal: stop.signal, hooks });
      const mine = ['claimed', 'sending'] as const;
      switch (outcome.kind) {
        case 'accepted':
          await recordTickets(pool, jobId, chunk, options.runner.instance, tokens, outcome.tickets);
          break;
        case 'not-sent':
          await moveChunk(pool, jobId, chunk.seq, options.runner.instance, mine, 'pending');
          continue;
        case 'in-doubt':
          await moveChunk(pool, jobId, chunk.seq, options.runner.instance, mine, 'in_doubt', outcome.message);
          options.logger?.warn(
            { job: jobId, chunk: chunk.seq, err: outcome.message },
            'chunk in doubt: it may have reached Expo, so it will not be sent again',
          );
          break;
        case 'rejected':
          if (outcome.fatal) {
            await moveChunk(pool, jobId, chunk.seq, options.runner.instance, mine, 'pending');
            fatal ??= `${outcome.message}. Fix EXPO_ACCESS_TOKEN (or EXPO_PUSH_URL), then run \`shipshape notify resume ${jobId}\`.`;
            stop.abort();
            return;
          }
          await moveChunk(pool, jobId, chunk.seq, options.runner.instance, mine, 'failed', outcome.message);
          options.logger?.warn({ job: jobId, chunk: chunk.seq, err: outcome.message }, 'chunk failed; it was not delivered');
          break;
      }
      settled += 1;
      options.onProgress?.({ settledChunks: settled, totalChunks: job.chunks.total });
    }
  };

  try {
    const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
    // One worker failing (the database went away) stops the others claiming more.
    const guarded = () =>
      worker().catch((error: unknown) => {
        stop.abort();
        throw error;
      });
    const results = await Promise.allSettled(Array.from({ length: concurrency }, guarded));
    const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failure) throw failure.reason;
  } finally {
    clearInterval(heartbeat);
    options.signal?.removeEventListener('abort', onAbort);
    await release(pool, jobId, runnerJson, fatal);
  }
  return getNotificationJob(pool, jobId);
}

/** Records a send and runs it to the end: what the admin API, the CLI and the scheduler call. */
export async function sendNotification(pool: Pool, sender: PushSender, request: NotificationRequest, options: RunOptions): Promise<NotificationJob> {
  const { job } = await createNotificationJob(pool, request);
  if (job.status === 'done') return job;
  return runNotificationJob(pool, sender, job.id, options);
}

/**
 * Why a finished send did not reach everyone, in one line with the cause ("2 of 2 chunk(s)
 * failed, not delivered: connect ECONNREFUSED 127.0.0.1:9"), or null when nothing failed.
 * Chunks in doubt are named too: they may or may not have been delivered.
 */
export async function describeSendFailure(db: Queryable, job: NotificationJob): Promise<string | null> {
  const parts: string[] = [];
  if (job.error !== null) parts.push(job.error);
  if (job.chunks.failed > 0 || job.chunks.inDoubt > 0) {
    const { rows } = await db.query<{ status: string; error: string | null; chunks: number }>(
      `SELECT status, error, count(*)::int AS chunks FROM notification_chunks
        WHERE job_id = $1::uuid AND status IN ('failed', 'in_doubt') GROUP BY status, error ORDER BY count(*) DESC, error LIMIT 5`,
      [job.id],
    );
    const causes = (status: string) =>
      rows
        .filter((row) => row.status === status)
        .map((row) => `${row.error ?? 'no cause recorded'}${row.chunks > 1 ? ` (${row.chunks} chunks)` : ''}`)
        .join('; ');
    if (job.chunks.failed > 0) parts.push(`${job.chunks.failed} of ${job.chunks.total} chunk(s) failed, not delivered: ${causes('failed')}`);
    if (job.chunks.inDoubt > 0) parts.push(`${job.chunks.inDoubt} of ${job.chunks.total} chunk(s) in doubt (may have been delivered): ${causes('in_doubt')}`);
  }
  return parts.length === 0 ? null : parts.join('; ').slice(0, 1000);
}

export async function getNotificationJob(db: Queryable, jobId: string): Promise<NotificationJob> {
  checkJobId(jobId);
  const { rows } = await db.query<JobRow>(
    `SELECT j.id, j.status, j.title, j.body, j.priority, j.data, j.requested_by, j.created_at, j.finished_at, j.error,
            j.recipients, j.chunk_count, c.pending, c.sending, c.sent, c.failed, c.in_doubt,
            d.tickets_ok, d.tickets_error, d.receipts_ok, d.receipts_error, d.receipts_pending, d.not_registered
       FROM notification_jobs j
       CROSS JOIN LATERAL (
         SELECT count(*) FILTER (WHERE status = 'pending')::int  AS pending,
                count(*) FILTER (WHERE status IN ('claimed', 'sending'))::int AS sending,
                count(*) FILTER (WHERE status = 'sent')::int     AS sent,
                count(*) FILTER (WHERE status = 'failed')::int   AS failed,
                count(*) FILTER (WHERE status = 'in_doubt')::int AS in_doubt
           FROM notification_chunks WHERE job_id = j.id) c
       CROSS JOIN LATERAL (
         SELECT count(*) FILTER (WHERE ticket_status = 'ok')::int     AS tickets_ok,
                count(*) FILTER (WHERE ticket_status = 'error')::int  AS tickets_error,
                count(*) FILTER (WHERE receipt_status = 'ok')::int    AS receipts_ok,
                count(*) FILTER (WHERE receipt_status = 'error')::int AS receipts_error,
                count(*) FILTER (WHERE ticket_id IS NOT NULL AND receipt_checked_at IS NULL)::int AS receipts_pending,
                count(*) FILTER (WHERE ticket_error = 'DeviceNotRegistered' OR receipt_error = 'DeviceNotRegistered')::int AS not_registered
           FROM notification_deliveries WHERE job_id = j.id) d
      WHERE j.id = $1::uuid`,
    [jobId],
  );
  const row = rows[0];
  if (!row)
    throw new ShipError('SHIP_ERR_NOT_FOUND', `No notification job ${jobId}. Check the id printed by \`shipshape notify send\` or returned by the API.`);
  return {
    id: row.id,
    status: row.status,
    title: row.title,
    body: row.body,
    priority: row.priority,
    data: row.data,
    requestedBy: row.requested_by,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
    error: row.error,
    recipients: row.recipients,
    chunks: { total: row.chunk_count, pending: row.pending, sending: row.sending, sent: row.sent, failed: row.failed, inDoubt: row.in_doubt },
    tickets: { ok: row.tickets_ok, error: row.tickets_error },
    receipts: { ok: row.receipts_ok, error: row.receipts_error, pending: row.receipts_pending },
    deviceNotRegistered: row.not_registered,
  };
}

/**
 * Unfinished jobs nobody is sending: their runner stopped beating (crashed, or was stopped
 * cleanly and released them). Any instance may resume them.
 */
export async function findAbandonedJobs(db: Queryable, limit = 10): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM notification_jobs
      WHERE status = 'sending'
        AND coalesce(heartbeat_at, created_at) < now() - $1::int * interval '1 millisecond'
      ORDER BY created_at LIMIT $2::int`,
    [STALE_AFTER_MS, limit],
  );
  return rows.map((row) => row.id);
}

/** A runner identity for `process` (from `currentProcess()`), unique to this call. */
export function newRunner(process: { readonly pid: number; readonly host: string; readonly processStart?: string | undefined }): RunnerIdentity {
  return { pid: process.pid, host: process.host, processStart: process.processStart, instance: randomUUID() };
}

interface JobRow {
  id: string;
  status: JobStatus;
  title: string;
  body: string;
  priority: Priority;
  data: NotificationData | null;
  requested_by: string;
  created_at: Date;
  finished_at: Date | null;
  error: string | null;
  recipients: number;
  chunk_count: number;
  pending: number;
  sending: number;
  sent: number;
  failed: number;
  in_doubt: number;
  tickets_ok: number;
  tickets_error: number;
  receipts_ok: number;
  receipts_error: number;
  receipts_pending: number;
  not_registered: number;
}

async function claimJob(pool: Pool, jobId: string, options: RunOptions): Promise<'claimed' | 'finished'> {
  return withTransaction(pool, async (client) => {
    const { rows } = await client.query<{ status: JobStatus; runner: RunnerIdentity | null; beating: boolean }>(
      `SELECT status, runner, coalesce(heartbeat_at >= now() - $2::int * interval '1 millisecond', false) AS beating
         FROM notification_jobs WHERE id = $1::uuid FOR UPDATE`,
      [jobId, STALE_AFTER_MS],
    );
    const row = rows[0];
    if (!row)
      throw new ShipError('SHIP_ERR_NOT_FOUND', `No notification job ${jobId}. Check the id printed by \`shipshape notify send\` or returned by the API.`);
    if (row.status === 'done' && !options.retryFailed) return 'finished';
    if (row.runner !== null && row.beating && !(options.isGone?.(row.runner) ?? false)) {
      throw new ShipError(
        'SHIP_ERR_LOCKED',
        `Notification job ${jobId} is being sent by process ${row.runner.pid} on ${row.runner.host}. ` +
          `Follow it with \`shipshape notify status ${jobId}\`; if that process is gone, resume again after ${STALE_AFTER_MS / 1000} s.`,
      );
    }
    // What a previous runner had in flight may have reached Expo: never send it again. What it
    // had only claimed certainly did not.
    await client.query(`UPDATE notification_chunks SET status = 'in_doubt', error = $2::text WHERE job_id = $1::uuid AND status = 'sending'`, [
      jobId,
      IN_DOUBT_AFTER_CRASH,
    ]);
    await client.query(`UPDATE notification_chunks SET status = 'pending', claimed_by = NULL WHERE job_id = $1::uuid AND status = 'claimed'`, [jobId]);
    if (options.retryFailed) {
      await client.query(`UPDATE notification_chunks SET status = 'pending', error = NULL WHERE job_id = $1::uuid AND status = 'failed'`, [jobId]);
    }
    await client.query(
      `UPDATE notification_jobs SET runner = $2::jsonb, heartbeat_at = now(), status = 'sending', error = NULL, finished_at = NULL WHERE id = $1::uuid`,
      [jobId, JSON.stringify(options.runner)],
    );
    return 'claimed';
  });
}

async function claimChunk(pool: Pool, jobId: string, runnerInstance: string): Promise<{ seq: number; claimedAt: Date } | undefined> {
  const { rows } = await pool.query<{ seq: number; claimed_at: Date }>(
    `UPDATE notification_chunks c SET status = 'claimed', claimed_by = $2::text, claimed_at = now()
      WHERE (c.job_id, c.seq) = (SELECT job_id, seq FROM notification_chunks
                                  WHERE job_id = $1::uuid AND status = 'pending'
                                  ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING c.seq, c.claimed_at`,
    [jobId, runnerInstance],
  );
  const row = rows[0];
  return row && { seq: row.seq, claimedAt: row.claimed_at };
}

/** The tickets, the devices they show gone, and the chunk's `sent` mark: all or nothing. */
async function recordTickets(
  pool: Pool,
  jobId: string,
  chunk: { seq: number; claimedAt: Date },
  runnerInstance: string,
  tokens: readonly string[],
  tickets: readonly ExpoTicket[],
): Promise<void> {
  const gone = tokens.filter((_, index) => {
    const ticket = tickets[index];
    return ticket?.status === 'error' && ticket.error === 'DeviceNotRegistered';
  });
  await withTransaction(pool, async (client) => {
    await client.query(
      `UPDATE notification_deliveries d SET ticket_status = t.status, ticket_id = t.id, ticket_error = t.error
         FROM unnest($3::text[], $4::text[], $5::text[], $6::text[]) AS t(token, status, id, error)
        WHERE d.job_id = $1::uuid AND d.seq = $2::int AND d.token = t.token`,
      [
        jobId,
        chunk.seq,
        tokens,
        tickets.map((ticket) => ticket.status),
        tickets.map((ticket) => (ticket.status === 'ok' ? ticket.id : null)),
        tickets.map((ticket) => (ticket.status === 'error' ? (ticket.error ?? ticket.message).slice(0, 500) : null)),
      ],
    );
    await deactivateDevices(client, gone, 'DeviceNotRegistered (push ticket)', chunk.claimedAt);
    // A late answer to a chunk someone marked in doubt still lands: it is the truth. (`claimed`:
    // a chunk whose users were all erased is settled without a request.)
    await client.query(
      `UPDATE notification_chunks SET status = 'sent', sent_at = now(), error = NULL
        WHERE job_id = $1::uuid AND seq = $2::int AND (status IN ('sending', 'in_doubt') OR (status = 'claimed' AND claimed_by = $3::text))`,
      [jobId, chunk.seq, runnerInstance],
    );
  });
}

/** Moves one of this runner's chunks on; returns 0 when it is no longer this runner's to move. */
async function moveChunk(
  pool: Pool,
  jobId: string,
  seq: number,
  runnerInstance: string,
  from: readonly string[],
  to: 'pending' | 'claimed' | 'sending' | 'failed' | 'in_doubt',
  error: string | null = null,
): Promise<number> {
  const { rowCount } = await pool.query(
    `UPDATE notification_chunks SET status = $5::text, error = $6::text, claimed_by = CASE WHEN $5::text = 'pending' THEN NULL ELSE claimed_by END
      WHERE job_id = $1::uuid AND seq = $2::int AND claimed_by = $3::text AND status = ANY($4::text[])`,
    [jobId, seq, runnerInstance, from, to, error === null ? null : error.slice(0, 1000)],
  );
  return rowCount ?? 0;
}

/** Gives the job up: finished, failed, or (interrupted) left for anyone to resume at once. */
async function release(pool: Pool, jobId: string, runnerJson: string, fatal: string | undefined): Promise<void> {
  await pool.query(
    `UPDATE notification_jobs j SET
        runner = NULL, heartbeat_at = NULL,
        status = CASE WHEN $3::text IS NOT NULL THEN 'failed'
                      WHEN NOT EXISTS (SELECT 1 FROM notification_chunks c WHERE c.job_id = j.id AND c.status IN ('pending', 'claimed', 'sending')) THEN 'done'
                      ELSE 'sending' END,
        error = $3::text,
        finished_at = CASE WHEN $3::text IS NOT NULL
                             OR NOT EXISTS (SELECT 1 FROM notification_chunks c WHERE c.job_id = j.id AND c.status IN ('pending', 'claimed', 'sending'))
                           THEN now() END
      WHERE id = $1::uuid AND runner = $2::jsonb`,
    [jobId, runnerJson, fatal ?? null],
  );
}

function checkJobId(jobId: string): void {
  if (!UUID_PATTERN.test(jobId))
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `"${jobId.slice(0, 60)}" is not a notification job id (a UUID). Check the id printed by \`shipshape notify send\`.`,
    );
}
