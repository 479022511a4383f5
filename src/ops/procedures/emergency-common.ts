/**
 * What `emergency disable` and `emergency enable` share: the page and its dedup key, the
 * alerter, the status page, pushes to every user, and reading /health until it says what
 * the database says.
 *
 * The page is opened with a fixed dedup key, so whoever runs `emergency enable` — another
 * operator, hours later, another host — resolves exactly that incident without having to
 * know which run opened it. Only one emergency disable runs at a time (lock `app:emergency`).
 */
import { ExpoPushClient } from '../../adapters/expo-push.ts';
import { createAlerter, defaultAlertRouting, loadAlertRouting, type Alert, type AlertDelivery } from '../../adapters/alerts/index.ts';
import { postStatusPage, type StatusPageState } from '../../adapters/status-page.ts';
import type { Config } from '../../config/index.ts';
import { createNotificationJob, newRunner, runNotificationJob, type Priority } from '../../domain/notifications.ts';
import { describeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { probeHealth } from '../diagnostics/api-probe.ts';
import { currentProcess, liveness } from '../engine/process-identity.ts';
import type { JsonObject, RunContext } from '../engine/types.ts';

/** The PagerDuty dedup key of "the app is disabled"; `emergency enable` resolves it. */
export const EMERGENCY_PAGE_KEY = 'shipshape-emergency-app-disabled';
/** The runbook: "Critical security vulnerability, data breach" — the Security row of the escalation matrix. */
export const EMERGENCY_ISSUE_TYPE = 'security';
export const EMERGENCY_LOCK = 'app:emergency';
/** How long /health gets to show a change (instances hear within a second). */
const HEALTH_WAIT_MS = 5_000;

export function setterOf(context: RunContext<unknown>): string {
  return `operator:${context.operator} (run ${context.runId})`;
}

/** The configured alerter; a broken routing file falls back to the built-in matrix, so it cannot block an emergency. */
export async function alerterFor(config: Config, logger: Logger): Promise<{ send(alert: Alert): Promise<AlertDelivery[]> }> {
  let routing = defaultAlertRouting;
  try {
    routing = await loadAlertRouting(config.alerts.routingFile);
  } catch (error) {
    logger.error({ err: describeError(error) }, 'the alert routing file is broken: using the built-in escalation matrix for this emergency');
  }
  return createAlerter({
    routing,
    logger,
    slackDefaultWebhook: config.alerts.slackWebhookUrl,
    pagerDutyRoutingKey: config.alerts.pagerDutyRoutingKey,
    pagerDutyBaseUrl: config.alerts.pagerDutyEventsUrl,
    smtp: config.smtpUrl === undefined ? undefined : { url: config.smtpUrl, from: config.mailFrom },
  });
}

/** Sends one alert and reports each target's fate, for the step's output and notes. */
export async function alertAndReport(context: RunContext<unknown>, alert: Alert): Promise<{ output: JsonObject; paged: boolean; summary: string }> {
  let deliveries: AlertDelivery[];
  try {
    const alerter = await alerterFor(context.config, context.logger);
    deliveries = await alerter.send(alert);
  } catch (error) {
    // createAlerter refuses an unusable SMTP_URL; that must not undo an emergency either.
    deliveries = [{ target: 'alerter', kind: 'log', ok: false, error: describeError(error) }];
  }
  const pagerDuty = deliveries.filter((d) => d.kind === 'pagerduty');
  const paged = pagerDuty.length > 0 && pagerDuty.every((d) => d.ok);
  const summary = deliveries.map((d) => `${d.target} ${d.ok ? 'ok' : `FAILED (${d.error ?? '?'})`}`).join('; ');
  return {
    output: {
      deliveries: deliveries.map((d) => ({ target: d.target, ok: d.ok, ...(d.error === undefined ? {} : { error: d.error }) })),
      paged,
      pagerDutyConfigured: pagerDuty.length > 0,
      dedupKey: EMERGENCY_PAGE_KEY,
    },
    paged,
    summary,
  };
}

/** Posts to the status page when STATUS_PAGE_WEBHOOK_URL is set. Never throws: a status page being down must not hold up an emergency. */
export async function updateStatusPage(context: RunContext<unknown>, status: StatusPageState, message: string): Promise<JsonObject> {
  const webhookUrl = context.config.statusPageWebhookUrl;
  if (webhookUrl === undefined) {
    context.note('STATUS_PAGE_WEBHOOK_URL is not set: update the status page by hand');
    return { posted: false, reason: 'STATUS_PAGE_WEBHOOK_URL is not set' };
  }
  try {
    await postStatusPage({ webhookUrl }, { status, message });
    context.note(`status page set to ${status}`);
    return { posted: true, status };
  } catch (error) {
    const reason = describeError(error);
    context.note(`status page NOT updated: ${reason} — update it by hand`);
    return { posted: false, status, error: reason };
  }
}

/**
 * A push to every user with notifications on, recorded as a job keyed by this run (so a
 * resumed run never sends twice) and sent from this process. Best effort: the in-app
 * maintenance screen is the message of record.
 */
export async function pushToEveryone(
  context: RunContext<unknown>,
  push: { title: string; body: string; priority: Priority; key: string },
): Promise<JsonObject> {
  try {
    const { pool } = await context.database();
    const { job } = await createNotificationJob(pool, {
      title: push.title,
      body: push.body,
      priority: push.priority,
      requestedBy: setterOf(context),
      idempotencyKey: push.key,
    });
    const sender = new ExpoPushClient({ pushUrl: context.config.push.expoPushUrl, accessToken: context.config.push.expoAccessToken });
    const done =
      job.status === 'sending'
        ? await runNotificationJob(pool, sender, job.id, {
            runner: newRunner(currentProcess()),
            isGone: (runner) => liveness(runner) === 'dead',
            signal: context.signal,
            logger: context.logger,
          })
        : job;
    context.note(`push ${done.id}: ${done.status}, ${done.recipients} device(s), ${done.chunks.sent}/${done.chunks.total} chunk(s) sent`);
    return { jobId: done.id, status: done.status, recipients: done.recipients, sentChunks: done.chunks.sent, failedChunks: done.chunks.failed };
  } catch (error) {
    const reason = describeError(error);
    context.note(`push NOT sent (${reason}); the in-app maintenance screen still tells users`);
    return { error: reason };
  }
}

export type HealthExpectation = { readonly maintenance: true; readonly message: string } | { readonly maintenance: false };

export interface HealthSeen {
  readonly ok: boolean;
  /** Nothing answered at API_URL. */
  readonly unreachable: boolean;
  readonly detail: string;
}

/**
 * Polls GET /health until it shows the expectation. An API that does not answer is reported
 * as such (it reads the state from the database when it starts), not as a mismatch.
 */
export async function waitForHealth(apiUrl: string, expected: HealthExpectation, waitMs = HEALTH_WAIT_MS): Promise<HealthSeen> {
  const deadline = Date.now() + waitMs;
  let last = '';
  for (;;) {
    const answer = await probeHealth(apiUrl, 2_000);
    if (answer.status === null) {
      return { ok: false, unreachable: true, detail: `${answer.url} did not answer (${answer.error ?? '?'})` };
    }
    last = `HTTP ${answer.status} ${JSON.stringify({ status: answer.state, ...(answer.message === null ? {} : { message: answer.message }) })}`;
    const shows = expected.maintenance
      ? answer.status === 503 && answer.state === 'maintenance' && answer.message === expected.message
      : answer.status === 200 && answer.state === 'ok';
    if (shows) return { ok: true, unreachable: false, detail: `${answer.url} answers ${last}` };
    if (Date.now() >= deadline) return { ok: false, unreachable: false, detail: `${answer.url} still answers ${last} after ${waitMs / 1_000} s` };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
