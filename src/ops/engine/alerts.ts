/**
 * What the runner tells people about runs, through an injected sink.
 *
 * Medium-risk and riskier runs, and procedures that name their own alert channels, are
 * announced when they start, succeed and fail; any other run that changes things is
 * announced when it fails. A failed high or critical run, and any run left needing
 * attention, pages the on-call. Alerts are the alerting adapter's `Alert`s; the
 * configured alerter satisfies `AlertSink`, and the default sink writes to the log. A sink
 * that fails or throws never changes how a run ends.
 */
import { createAlerter, defaultAlertRouting, loadAlertRouting, type Alert, type Alerter, type AlertRouting } from '../../adapters/alerts/index.ts';
import type { Config } from '../../config/index.ts';
import { describeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';

export interface AlertSink {
  send(alert: Alert): Promise<unknown>;
}

/**
 * The alerter the configuration describes (ALERT_ROUTING_FILE, SLACK_WEBHOOK_URL,
 * PAGERDUTY_*, SMTP_URL). Never throws: a broken routing file or an unusable SMTP_URL must not
 * stop a procedure at 3 a.m., so the problem is logged and alerts go to the log only until it
 * is fixed. With `keepPaging` (an emergency, where the page is the point) a broken routing file
 * falls back to the built-in escalation matrix instead, so SLACK_WEBHOOK_URL and
 * PAGERDUTY_ROUTING_KEY still reach people.
 */
export async function configuredAlerter(config: Config, logger: Logger, options: { keepPaging?: boolean } = {}): Promise<Alerter> {
  let routing: AlertRouting;
  try {
    routing = await loadAlertRouting(config.alerts.routingFile);
  } catch (error) {
    if (!options.keepPaging) return logOnlyAlerter(logger, error);
    logger.error({ err: describeError(error) }, 'the alert routing file is broken: using the built-in escalation matrix');
    routing = defaultAlertRouting;
  }
  try {
    return createAlerter({
      routing,
      logger,
      slackDefaultWebhook: config.alerts.slackWebhookUrl,
      pagerDutyRoutingKey: config.alerts.pagerDutyRoutingKey,
      pagerDutyBaseUrl: config.alerts.pagerDutyEventsUrl,
      smtp: config.smtpUrl === undefined ? undefined : { url: config.smtpUrl, from: config.mailFrom },
    });
  } catch (error) {
    // createAlerter refuses only an unusable SMTP_URL.
    return logOnlyAlerter(logger, error);
  }
}

function logOnlyAlerter(logger: Logger, problem: unknown): Alerter {
  logger.error({ err: describeError(problem) }, 'alerting is misconfigured: alerts go to the log only until it is fixed');
  return createAlerter({ routing: defaultAlertRouting, logger });
}

export function logAlertSink(logger: Logger): AlertSink {
  return {
    async send(alert) {
      const level = alert.severity === 'info' ? 'info' : alert.severity === 'warning' ? 'warn' : 'error';
      logger[level]({ alert: alert.event, issueType: alert.issueType, page: alert.page, details: alert.details }, `${alert.title}: ${alert.text}`);
    },
  };
}

/** Delivers without ever throwing; a broken sink is logged and forgotten. */
export async function sendSafely(sink: AlertSink, alert: Alert, logger: Logger): Promise<boolean> {
  try {
    await sink.send(alert);
    return true;
  } catch (error) {
    logger.warn({ alert: alert.event, err: describeError(error) }, 'alert could not be sent; the run goes on');
    return false;
  }
}

/** The dedup key of a run's page, so a later success can resolve it. */
export function pageKey(runId: string): string {
  return `shipshape-run-${runId}`;
}
