/**
 * The server's background side of push: runs sends submitted by the admin API, picks up
 * sends abandoned by a process that died (any instance may; a chunk is never sent twice),
 * and reads Expo's receipts once they are due.
 */
import type { ExpoPushClient } from '../adapters/expo-push.ts';
import type { Pool } from '../db/pool.ts';
import { describeSendFailure, findAbandonedJobs, newRunner, runNotificationJob } from '../domain/notifications.ts';
import { checkReceipts, DEFAULT_RECEIPT_MIN_AGE_MS } from '../domain/push-receipts.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { currentProcess, runnerIsGone } from '../ops/engine/process-identity.ts';

export interface NotificationWorkerOptions {
  readonly pool: Pool;
  readonly push: ExpoPushClient;
  readonly logger: Logger;
  /** How often to look for abandoned sends and due receipts. */
  readonly intervalMs?: number;
  readonly receiptMinAgeMs?: number;
}

export class NotificationWorker {
  private readonly running = new Map<string, Promise<void>>();
  private readonly stop = new AbortController();
  private readonly runner = newRunner(currentProcess());
  private timer: NodeJS.Timeout | undefined;
  private receipts: Promise<void> | undefined;

  private readonly options: NotificationWorkerOptions;

  constructor(options: NotificationWorkerOptions) {
    this.options = options;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.options.intervalMs ?? 15_000);
    this.timer.unref();
  }

  /** Starts sending `jobId` in the background (no-op if this process is already sending it). */
  submit(jobId: string): void {
    if (this.stop.signal.aborted || this.running.has(jobId)) return;
    const run = runNotificationJob(this.options.pool, this.options.push, jobId, {
      runner: this.runner,
      isGone: runnerIsGone,
      signal: this.stop.signal,
      logger: this.options.logger,
    })
      .then(async (job) => ({ job, cause: await describeSendFailure(this.options.pool, job).catch(() => job.error) }))
      .then(
        ({ job, cause }) =>
          cause === null
            ? this.options.logger.info({ job: job.id, status: job.status, chunks: job.chunks }, `notification ${job.id}: ${job.status}`)
            : this.options.logger.error(
                { job: job.id, status: job.status, chunks: job.chunks, error: cause },
                `notification ${job.id}: ${job.status}, not delivered to everyone — ${cause}`,
              ),
        (error: unknown) => this.options.logger.warn({ job: jobId, err: describeError(error) }, 'notification send stopped'),
      );
    this.running.set(jobId, run);
    void run.finally(() => this.running.delete(jobId));
  }

  /** Stops claiming chunks, lets requests in flight finish and be recorded; unfinished sends stay resumable. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.stop.abort();
    await Promise.all([...this.running.values(), this.receipts]);
  }

  private tick(): void {
    findAbandonedJobs(this.options.pool)
      .then((ids) => {
        for (const id of ids) this.submit(id);
      })
      .catch((error: unknown) => this.options.logger.warn({ err: describeError(error) }, 'could not look for abandoned notification sends'));
    if (this.receipts) return;
    this.receipts = checkReceipts(this.options.pool, this.options.push, { minAgeMs: this.options.receiptMinAgeMs ?? DEFAULT_RECEIPT_MIN_AGE_MS })
      .then((result) => {
        if (result.checked > 0) this.options.logger.info(result, 'push receipts checked');
      })
      .catch((error: unknown) => this.options.logger.warn({ err: describeError(error) }, 'push receipts check failed; will retry'))
      .finally(() => {
        this.receipts = undefined;
      });
  }
}
