/**
 * `shipshape notify send|resume|status|receipts`: push notifications from the operator's
 * terminal (runbook: Emergency App Disable, step 5). `send` records the job and sends it from
 * this process, showing progress; Ctrl-C stops after the requests in flight, and
 * `notify resume <id>` carries on (so would any running server after 30 s).
 */
import { type Command, InvalidArgumentError } from 'commander';
import { ExpoPushClient } from '../../adapters/expo-push.ts';
import type { Config } from '../../config/index.ts';
import type { Pool } from '../../db/pool.ts';
import { recordAudit } from '../../domain/audit.ts';
import {
  createNotificationJob,
  describeSendFailure,
  getNotificationJob,
  newRunner,
  priorities,
  runNotificationJob,
  type NotificationData,
  type NotificationJob,
  type Priority,
} from '../../domain/notifications.ts';
import { checkReceipts, type ReceiptCheckResult } from '../../domain/push-receipts.ts';
import { ShipError } from '../../errors.ts';
import { currentProcess, runnerIsGone } from '../../ops/engine/process-identity.ts';
import { cliContext, withDatabase } from '../context.ts';
import { exitWithFindings } from '../exit.ts';
import { emit } from '../output.ts';

interface SendOptions {
  title: string;
  body: string;
  priority: Priority;
  data?: NotificationData;
  idempotencyKey?: string;
  json: boolean;
}

const priorityArgument = (value: string): Priority => {
  const match = priorities.find((priority) => priority === value);
  if (!match) throw new InvalidArgumentError('must be default, normal or high.');
  return match;
};

const dataArgument = (value: string): NotificationData => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('must be a JSON object, e.g. \'{"screen":"status"}\'.');
  }
  if (!isJsonObject(parsed)) throw new InvalidArgumentError('must be a JSON object, e.g. \'{"screen":"status"}\'.');
  return parsed;
};

/** `15m`, `90s`, `1h`, `0s` → milliseconds. */
const durationArgument = (value: string): number => {
  const match = /^(\d+)(ms|s|m|h)$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError('must be a duration like 0s, 90s, 15m or 1h.');
  const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
  return Number(match[1]) * (units[match[2] ?? ''] ?? 0);
};

export function registerNotify(program: Command): void {
  const notify = program.command('notify').description('push notifications to the app’s users (Expo push)');

  notify
    .command('send')
    .description('send a push notification to every user with notifications enabled, and wait until it is sent')
    .requiredOption('--title <text>', 'notification title')
    .requiredOption('--body <text>', 'notification text')
    .option('--priority <priority>', 'default, normal or high', priorityArgument, 'default')
    .option('--data <json>', 'a JSON object delivered to the app with the notification', dataArgument)
    .option('--idempotency-key <key>', 'asking again with the same key resumes that send instead of starting another')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: SendOptions) => {
      const context = cliContext();
      const actor = `operator:${context.config.operator}`;
      await withDatabase(context, async (database) => {
        const { pool } = database;
        const { job, created } = await createNotificationJob(pool, {
          title: options.title,
          body: options.body,
          priority: options.priority,
          data: options.data,
          requestedBy: actor,
          idempotencyKey: options.idempotencyKey,
        });
        if (created) {
          await recordAudit(pool, { actor, action: 'admin.notifications.sent', details: { job: job.id, priority: job.priority, recipients: job.recipients } });
        }
        process.stderr.write(
          `notification ${job.id}: ${job.recipients} device(s) in ${job.chunks.total} chunk(s)${created ? '' : ' (recorded earlier with this idempotency key)'}\n`,
        );
        const final = job.status === 'done' ? job : await runInForeground(pool, context.config, job.id, { retryFailed: false });
        report(options, final, await describeSendFailure(pool, final));
      });
    });

  notify
    .command('resume <job-id>')
    .description('carry on with a send that was interrupted or crashed (chunks that may have been delivered are not sent again)')
    .option('--retry-failed', 'also send chunks that failed earlier (they were certainly not delivered)', false)
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (jobId: string, options: { retryFailed: boolean; json: boolean }) => {
      const context = cliContext();
      await withDatabase(context, async (database) => {
        const final = await runInForeground(database.pool, context.config, jobId, options);
        report(options, final, await describeSendFailure(database.pool, final));
      });
    });

  notify
    .command('status <job-id>')
    .description('progress of a send: chunks, tickets, receipts')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (jobId: string, options: { json: boolean }) => {
      const context = cliContext();
      const job = await withDatabase(context, (database) => getNotificationJob(database.pool, jobId));
      emit(options, { job }, ({ job: shown }) => describeJob(shown));
    });

  notify
    .command('receipts')
    .description('fetch due push receipts now and deactivate devices Expo reports as gone (a running server does this every 15 s)')
    .option('--min-age <duration>', 'only tickets at least this old (Expo needs time to hear from Apple and Google)', durationArgument, 15 * 60_000)
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (options: { minAge: number; json: boolean }) => {
      const context = cliContext();
      const result = await withDatabase(context, (database) => checkReceipts(database.pool, expoClient(context.config), { minAgeMs: options.minAge }));
      emit(options, result, describeReceipts);
    });
}

function expoClient(config: Config): ExpoPushClient {
  return new ExpoPushClient({ pushUrl: config.push.expoPushUrl, accessToken: config.push.expoAccessToken });
}

/** Sends until done; the first Ctrl-C stops after the requests in flight, a second one exits at once. */
async function runInForeground(pool: Pool, config: Config, jobId: string, options: { retryFailed: boolean }): Promise<NotificationJob> {
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: finishing the requests in flight, then stopping (send it again to exit now)\n`);
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const interactive = process.stderr.isTTY === true;
  try {
    return await runNotificationJob(pool, expoClient(config), jobId, {
      runner: newRunner(currentProcess()),
      isGone: runnerIsGone,
      signal: stop.signal,
      retryFailed: options.retryFailed,
      onProgress: ({ settledChunks, totalChunks }) => {
        if (interactive) process.stderr.write(`\r${settledChunks}/${totalChunks} chunks settled`);
      },
    });
  } finally {
    if (interactive) process.stderr.write('\n');
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * Prints the job and sets the exit code: 0 only when every chunk was accepted by Expo. When not,
 * stderr says why — the cause each failed chunk recorded (e.g. connection refused), not only
 * that it failed.
 */
function report(options: { json: boolean }, job: NotificationJob, cause: string | null): void {
  emit(options, { job, cause }, ({ job: shown }) => describeJob(shown));
  if (job.status === 'failed') throw new ShipError('SHIP_ERR_PROVIDER_FAILED', job.error ?? cause ?? 'Expo refused the send.');
  const problems: string[] = [];
  if (job.status === 'sending') problems.push(`the send stopped before the end; run \`shipshape notify resume ${job.id}\` to carry on`);
  if (job.chunks.failed > 0) {
    problems.push(
      `${job.chunks.failed} of ${job.chunks.total} chunk(s) failed and were not delivered (${failedCauses(cause)}); \`shipshape notify resume ${job.id} --retry-failed\` sends them again`,
    );
  }
  if (job.chunks.inDoubt > 0) problems.push(`${job.chunks.inDoubt} chunk(s) are in doubt (they may have been delivered) and are deliberately not sent again`);
  if (problems.length > 0) {
    process.stderr.write(`${problems.join('\n')}\n`);
    exitWithFindings({ healthy: false });
  }
}

/** The causes part of `describeSendFailure`'s line for failed chunks, e.g. "connect ECONNREFUSED 127.0.0.1:9". */
function failedCauses(cause: string | null): string {
  const match = cause?.match(/failed, not delivered: (.*?)(?:; \d+ of \d+ chunk\(s\) in doubt|$)/);
  return `cause: ${match?.[1] ?? cause ?? 'not recorded'}`;
}

function describeJob(job: NotificationJob): string {
  const c = job.chunks;
  return [
    `notification ${job.id}: ${job.status}${job.error ? ` — ${job.error}` : ''}`,
    `  title      ${job.title} (priority ${job.priority})`,
    `  devices    ${job.recipients} in ${c.total} chunk(s)`,
    `  chunks     sent ${c.sent}, pending ${c.pending}, sending ${c.sending}, failed ${c.failed}, in doubt ${c.inDoubt}`,
    `  tickets    ok ${job.tickets.ok}, error ${job.tickets.error}`,
    `  receipts   ok ${job.receipts.ok}, error ${job.receipts.error}, not yet read ${job.receipts.pending}`,
    `  gone       ${job.deviceNotRegistered} device(s) reported DeviceNotRegistered and deactivated`,
  ].join('\n');
}

function describeReceipts(result: ReceiptCheckResult): string {
  if (result.checked === 0) return 'No receipts are due.';
  return `Checked ${result.checked} receipt(s): ${result.ok} ok, ${result.errors} error, ${result.notReady} not ready yet, ${result.expired} expired; ${result.devicesDeactivated} device(s) deactivated.`;
}

function isJsonObject(value: unknown): value is NotificationData {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
