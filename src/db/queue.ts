/**
 * The job queue: pg-boss on the application database, in a schema of its own
 * (`shipshape_queue`), which pg-boss installs and migrates itself when a worker starts (under
 * its own advisory lock, so instances starting together do not race).
 *
 * pg-boss runs its statements through our pool (one driver path for PostgreSQL and for the
 * embedded PGlite behind our wire server); jobs are fetched with FOR UPDATE SKIP LOCKED, so
 * however many instances work a queue, each job is held by one of them. Jobs are enqueued
 * only by workers, inside the transaction that claims the row they come from (a due schedule,
 * a due notification, a pending notice), through `transactionDb` — except the embedded dump,
 * which a process asks of the one that owns the embedded database (src/ops/backups/owner-dump.ts).
 */
import type { Db, PgBoss, QueueOptions } from 'pg-boss';
import type { Pool, PoolClient } from './pool.ts';

export const QUEUE_SCHEMA = 'shipshape_queue';

export const queueNames = {
  /** Delivers one scheduled push notification. */
  notification: 'shipshape-notification',
  /** Runs one occurrence (or notice) of a recurring schedule. */
  schedule: 'shipshape-schedule',
  /** Sends one batch of maintenance notice emails, then queues the next. */
  noticeEmails: 'shipshape-notice-emails',
  /** Dumps the embedded database; worked only by the process that owns it. */
  embeddedDump: 'shipshape-embedded-dump',
} as const;

/** Retries a notification send resumes safely (its idempotency key), so it may try again. */
export const NOTIFICATION_RETRY_LIMIT = 5;

export const queueOptions: Readonly<Record<keyof typeof queueNames, QueueOptions>> = {
  notification: { retryLimit: NOTIFICATION_RETRY_LIMIT, retryDelay: 5, retryBackoff: true, retryDelayMax: 300, expireInSeconds: 30 * 60 },
  // A procedure run is never retried blindly: a failed one has alerted and left a journal;
  // an interrupted one is for `shipshape runs resume`. Long enough for a 2-hour window.
  schedule: { retryLimit: 0, expireInSeconds: 4 * 3_600 },
  noticeEmails: { retryLimit: 5, retryDelay: 30, retryBackoff: true, retryDelayMax: 900, expireInSeconds: 30 * 60 },
  // The process that asked follows it and reports; it is not retried behind its back. No
  // heartbeat: the dump holds the embedded backend, so pg-boss could not write one meanwhile.
  embeddedDump: { retryLimit: 0, expireInSeconds: 60 * 60 },
};

/** pg-boss statements on our pool. */
export function poolDb(pool: Pool): Db {
  return { executeSql: (text, values) => pool.query(text, values) };
}

/** pg-boss statements inside the caller's transaction (the `db` option of `send`). */
export function transactionDb(client: PoolClient): Db {
  return { executeSql: (text, values) => client.query(text, values) };
}

/** pg-boss for a process that works queues. pg-boss itself is imported here, by the processes that use it. */
export async function createQueue(pool: Pool, options: { readonly instanceName: string }): Promise<PgBoss> {
  const { PgBoss } = await import('pg-boss');
  return new PgBoss({
    db: poolDb(pool),
    schema: QUEUE_SCHEMA,
    // Recurring schedules are ours (src/scheduler/schedules.ts): DST-safe and "first Sunday" aware.
    schedule: false,
    supervise: true,
    migrate: true,
    instanceName: options.instanceName,
  });
}

/**
 * pg-boss for a process that only sends jobs and reads their state (a CLI command): it is not
 * started, so it neither installs the schema nor works queues nor registers as an instance.
 */
export async function queueClient(pool: Pool): Promise<PgBoss> {
  const { PgBoss } = await import('pg-boss');
  return new PgBoss({ db: poolDb(pool), schema: QUEUE_SCHEMA, schedule: false, supervise: false, migrate: false });
}

/** Creates our queues (idempotent) and loads them into pg-boss's cache before any transaction needs them. */
export async function createQueues(boss: PgBoss): Promise<void> {
  for (const key of Object.keys(queueNames) as Array<keyof typeof queueNames>) {
    const name = queueNames[key];
    const existing = await boss.getQueue(name);
    if (existing === null) await boss.createQueue(name, queueOptions[key]);
    else await boss.updateQueue(name, queueOptions[key]);
  }
}
