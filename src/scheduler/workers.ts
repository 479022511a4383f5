/**
 * The scheduler's workers: what `shipshape serve` runs beside the API (unless `--no-workers`)
 * and `shipshape worker` runs alone. Any number of instances may run them against one
 * database; they cooperate through it and never run the same job twice.
 *
 * - A tick every SCHEDULER_POLL_MS hands due work to the job queue: scheduled notifications
 *   whose time has come, recurring schedules whose occurrence (or notice) has come, and
 *   maintenance notices whose emails are to go. Each is claimed with FOR UPDATE SKIP LOCKED
 *   and enqueued in the same transaction that marks it, so it is enqueued exactly once.
 * - pg-boss workers run the jobs: one instance fetches each job.
 * - The watchdog evaluates the runbook's numbers and alerts (one instance per interval).
 *
 * Stopping (SIGTERM): the tick stops, running jobs are told to stop (a notification send
 * finishes the requests in flight; a procedure rolls back as on Ctrl-C), and pg-boss waits
 * for them before the pool closes. Whatever did not finish is retried by another instance.
 */
import { z } from 'zod';
import type { Mailer } from '../adapters/mailer.ts';
import { TokenBucket } from '../adapters/token-bucket.ts';
import { shipshapeProfile } from '../app-profile.ts';
import type { Config } from '../config/index.ts';
import type { Database } from '../db/index.ts';
import { withTransaction } from '../db/pool.ts';
import { firstRow } from '../db/rows.ts';
import { claimPendingNotices, markNoticeQueued, sendNoticeEmailBatch } from '../domain/maintenance-notices.ts';
import { newRunner, type PushSender } from '../domain/notifications.ts';
import { claimDueNotifications, deliverScheduledNotification, markQueued } from '../domain/scheduled-notifications.ts';
import { describeError, ShipError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { ownerDumpRequest, takeOwnerDump } from '../ops/backups/owner-dump.ts';
import { configuredAlerter } from '../ops/engine/alerts.ts';
import { currentProcess, runnerIsGone } from '../ops/engine/process-identity.ts';
import { createQueue, createQueues, NOTIFICATION_RETRY_LIMIT, QUEUE_SCHEMA, queueNames, transactionDb } from '../db/queue.ts';
import { claimDueSchedules, ensureDefaultSchedules, planTick, recordOutcome, recordTick, type ScheduledRun, type TickPlan } from './schedules.ts';
import { runScheduledTask } from './task-runner.ts';
import { advanceDueReleases } from '../ops/release/rollout.ts';
import { configuredUpdateHealth } from '../domain/update-health.ts';
import { advanceDueRollouts, rolloutAlert } from '../domain/update-rollouts.ts';
import { startWatchdogLoop, type WatchdogLoop } from './watchdog-loop.ts';
import type { JobResult } from 'pg-boss';

const NOTICE_EMAIL_BATCH = 100;
/** How many due rows one tick hands over per kind; the next tick takes the rest. */
const TICK_BATCH = 50;
const STOP_TIMEOUT_MS = 20_000;

export interface WorkersOptions {
  readonly config: Config;
  readonly database: Database;
  readonly logger: Logger;
  readonly push: PushSender;
  readonly mailer: Mailer;
  /** This instance's name in pg-boss's registry (`shipshape-api`, `shipshape-worker`). */
  readonly instanceName: string;
}

export interface Workers {
  /** Hands due work to the queue now (the timer does this every SCHEDULER_POLL_MS). */
  tick(): Promise<void>;
  close(): Promise<void>;
}

const notificationJob = z.object({ id: z.uuid() });
const scheduleJob = z.object({
  schedule: z.string(),
  task: z.string(),
  phase: z.enum(['notice', 'due']),
  occurrence: z.string(),
  params: z.record(z.string(), z.json()),
});
const noticeJob = z.object({ window: z.iso.datetime({ offset: true }), after: z.uuid().nullable() });

export async function startWorkers(options: WorkersOptions): Promise<Workers> {
  const { config, database, logger, push, mailer } = options;
  const { pool } = database;
  const log = logger.child({ component: 'scheduler' });
  await ensureDefaultSchedules(pool, config, 'system');

  const boss = await createQueue(pool, { instanceName: options.instanceName });
  boss.on('error', (error: Error) => log.warn({ err: describeError(error) }, 'job queue error'));
  try {
    await boss.start();
  } catch (error) {
    throw new ShipError(
      'SHIP_ERR_DATABASE_UNAVAILABLE',
      `The job queue could not start in schema ${QUEUE_SCHEMA} (${describeError(error)}). The database role needs CREATE on the database the first time (pg-boss installs its schema); or run \`shipshape serve --no-workers\` and the workers elsewhere.`,
      { cause: error },
    );
  }
  const stop = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;
  let watchdog: WatchdogLoop | undefined;
  let closed = false;
  try {
    await createQueues(boss);
    const alerts = await configuredAlerter(config, log);
    const runner = newRunner(currentProcess());
    const emailBucket = new TokenBucket({ ratePerSecond: config.maintenance.emailRatePerSecond, capacity: config.maintenance.emailRatePerSecond });

    // One result per job: a send that finished with chunks failed (the push client already
    // retried them) fails its queue job for good, with the cause — never `completed`; a send
    // that stopped part-way fails it for a retry, which resumes the same send.
    await boss.work<unknown>(queueNames.notification, { pollingIntervalSeconds: 1, localConcurrency: 2, perJobResults: true }, async (jobs) => {
      const results: JobResult[] = [];
      for (const job of jobs) {
        try {
          const { id } = notificationJob.parse(job.data);
          const outcome = await deliverScheduledNotification(pool, push, id, {
            runner,
            isGone: runnerIsGone,
            signal: AbortSignal.any([job.signal, stop.signal]),
            logger: log,
            lastAttempt: job.retryCount >= NOTIFICATION_RETRY_LIMIT,
          });
          if (outcome.outcome === 'skipped') {
            const givenUp = outcome.status === 'failed' || outcome.status === 'partial';
            log[givenUp ? 'warn' : 'info']({ notification: id, status: outcome.status }, `scheduled notification ${id}: nothing to do (${outcome.status})`);
            results.push(
              givenUp
                ? { id: job.id, status: 'deadletter', output: { notification: id, status: outcome.status, error: outcome.error } }
                : { id: job.id, status: 'completed' },
            );
          } else if (outcome.outcome === 'sent') {
            log.info({ notification: id, job: outcome.job.id, recipients: outcome.job.recipients }, `scheduled notification ${id}: sent`);
            results.push({ id: job.id, status: 'completed', output: { notification: id, status: 'sent', job: outcome.job.id } });
          } else {
            log.error(
              { notification: id, job: outcome.job.id, recipients: outcome.job.recipients, chunks: outcome.job.chunks },
              `scheduled notification ${id}: ${outcome.outcome} — ${outcome.error}`,
            );
            results.push({
              id: job.id,
              status: 'deadletter',
              output: { notification: id, status: outcome.outcome, job: outcome.job.id, error: outcome.error },
            });
          }
        } catch (error) {
          log.warn({ queueJob: job.id, err: describeError(error) }, 'scheduled notification delivery stopped; the queue retries it');
          results.push({ id: job.id, status: 'failed', output: { message: describeError(error) } });
        }
      }
      return results;
    });

    await boss.work<unknown>(queueNames.schedule, { pollingIntervalSeconds: 2 }, async (jobs) => {
      for (const job of jobs) {
        const run: ScheduledRun = scheduleJob.parse(job.data);
        log.info(
          { schedule: run.schedule, phase: run.phase, occurrence: run.occurrence },
          `schedule ${run.schedule}: running the ${run.phase} phase of ${run.occurrence}`,
        );
        const outcome = await runScheduledTask({ config, logger: log, database, alerts, signal: AbortSignal.any([job.signal, stop.signal]) }, run).catch(
          (error: unknown) => ({
            ok: false,
            summary: `failed: ${describeError(error)}`,
          }),
        );
        await recordOutcome(pool, run.schedule, `${run.phase} ${run.occurrence}: ${outcome.summary}`, outcome.ok);
        log[outcome.ok ? 'info' : 'error']({ schedule: run.schedule, phase: run.phase }, `schedule ${run.schedule}: ${outcome.summary}`);
      }
    });

    await boss.work<unknown>(queueNames.noticeEmails, { pollingIntervalSeconds: 2 }, async (jobs) => {
      for (const job of jobs) {
        const data = noticeJob.parse(job.data);
        const result = await sendNoticeEmailBatch(pool, mailer, new Date(data.window), {
          afterUserId: data.after,
          batchSize: NOTICE_EMAIL_BATCH,
          bucket: emailBucket,
          excludeEmail: config.maintenance.smokeTestEmail,
          signal: AbortSignal.any([job.signal, stop.signal]),
        });
        log.info({ window: data.window, ...result }, `maintenance notice ${data.window}: ${result.sent} email(s) sent in this batch`);
        if (!result.done && !result.cancelled) await boss.send(queueNames.noticeEmails, { window: data.window, after: result.lastUserId });
      }
    });

    // Only the process that owns the embedded database can dump it; other processes ask it to.
    const { embedded } = database;
    if (embedded !== undefined) {
      await boss.work<unknown>(queueNames.embeddedDump, { pollingIntervalSeconds: 1 }, async ([job]) => {
        if (job === undefined) return undefined;
        const request = ownerDumpRequest.parse(job.data);
        log.info({ backupId: request.backupId }, `embedded dump ${request.backupId}: taking it for another process`);
        return takeOwnerDump({ config, embedded, profile: shipshapeProfile, request, signal: AbortSignal.any([job.signal, stop.signal]) });
      });
    }

    const tick = async (): Promise<void> => {
      // A rollout that cannot be evaluated must not hold up notifications and schedules.
      await advanceRollouts().catch((error: unknown) => log.warn({ err: describeError(error) }, 'update rollouts could not be evaluated this tick'));
      const now = await handOverDueWork();
      // A release's daily rollout step (gates read, Play moved or both stores halted): claimed
      // with a lease, so one worker does each. Its failures are its own, never the tick's.
      for (const outcome of await advanceDueReleases({ config, logger: log, db: pool, actor: 'scheduler' }).catch((error: unknown) => {
        log.error({ err: describeError(error) }, 'release rollouts could not be advanced this tick');
        return [];
      })) {
        log[outcome.verdict === 'breach' || outcome.errors.length > 0 ? 'error' : 'info'](
          { version: outcome.version, verdict: outcome.verdict },
          `release ${outcome.version}: ${outcome.summary}`,
        );
      }
      for (const skipped of now.skipped) {
        log.warn({ schedule: skipped.schedule }, `schedule ${skipped.schedule}: ${skipped.reason}`);
        await alerts
          .send({
            issueType: 'infrastructure',
            severity: 'warning',
            event: 'schedule.skipped',
            title: `Scheduled occurrence of ${skipped.schedule} skipped`,
            text: skipped.reason,
            dedupKey: `shipshape-schedule-${skipped.schedule}-skipped`,
          })
          .catch(() => undefined);
      }
    };

    /** Update rollouts whose gates are due: advance, hold, halt or roll back, then say so. */
    const updateHealth = configuredUpdateHealth(pool, config);
    const advanceRollouts = async (): Promise<void> => {
      for (const outcome of await advanceDueRollouts(pool, { health: updateHealth })) {
        const { rollout, action, verdict } = outcome;
        const level = action === 'halted' || action === 'rolled-back' ? 'error' : action === 'waiting' || action === 'held' ? 'debug' : 'info';
        log[level](
          { rollout: rollout.id, update: rollout.updateId, percent: rollout.percent, action },
          `update rollout ${rollout.id}: ${action} at ${rollout.percent} % (${verdict.summary})`,
        );
        const alert = rolloutAlert(outcome);
        if (alert) await alerts.send(alert).catch(() => undefined);
      }
    };

    /** The three hand-overs, each in its own short transaction (the embedded database serialises them). */
    const handOverDueWork = async (): Promise<{ skipped: Array<{ schedule: string; reason: string }> }> => {
      await withTransaction(pool, async (client) => {
        for (const id of await claimDueNotifications(client, TICK_BATCH)) {
          const jobId = await boss.send(queueNames.notification, { id }, { db: transactionDb(client) });
          await markQueued(client, id, jobId);
        }
      });
      const skipped: Array<{ schedule: string; reason: string }> = [];
      await withTransaction(pool, async (client) => {
        const { rows } = await client.query<{ now: Date }>('SELECT now() AS now');
        const now = firstRow(rows).now;
        for (const schedule of await claimDueSchedules(client)) {
          let plan: TickPlan;
          try {
            plan = planTick(schedule, now);
          } catch (error) {
            log.error({ schedule: schedule.name, err: describeError(error) }, `schedule ${schedule.name} cannot be planned; left as it is`);
            continue;
          }
          for (const run of plan.runs) await boss.send(queueNames.schedule, run, { db: transactionDb(client) });
          await recordTick(client, schedule.name, plan);
          if (plan.skipped)
            skipped.push({ schedule: schedule.name, reason: `occurrence ${plan.skipped.occurrence.toISOString()} skipped: ${plan.skipped.reason}` });
        }
      });
      await withTransaction(pool, async (client) => {
        for (const window of await claimPendingNotices(client, TICK_BATCH)) {
          await boss.send(queueNames.noticeEmails, { window: window.toISOString(), after: null }, { db: transactionDb(client) });
          await markNoticeQueued(client, window);
        }
      });
      return { skipped };
    };

    let failures = 0;
    const loop = () => {
      if (closed) return;
      ticking = tick()
        .then(() => {
          if (failures > 0) log.info('the scheduler reaches the database again');
          failures = 0;
        })
        .catch((error: unknown) => {
          // Once per outage, not once per tick.
          if (failures++ === 0) log.warn({ err: describeError(error) }, 'scheduler tick failed; retrying every tick');
        })
        .finally(() => {
          ticking = undefined;
          if (!closed) timer = setTimeout(loop, config.scheduler.pollMs);
        });
    };
    loop();
    watchdog = startWatchdogLoop({ config, database, alerts, logger: log.child({ component: 'watchdog' }), instanceName: options.instanceName });
    log.info({ pollMs: config.scheduler.pollMs }, 'workers started: scheduled notifications, recurring schedules, maintenance notices, watchdog');

    return {
      tick: async () => {
        await ticking;
        await tick();
      },
      close: async () => {
        if (closed) return;
        closed = true;
        clearTimeout(timer);
        await ticking;
        await watchdog?.close();
        stop.abort();
        await boss.stop({ graceful: true, timeout: STOP_TIMEOUT_MS, close: false });
        log.info('workers stopped');
      },
    };
  } catch (error) {
    closed = true;
    clearTimeout(timer);
    await watchdog?.close();
    stop.abort();
    await boss.stop({ graceful: false, close: false }).catch(() => undefined);
    throw error;
  }
}
