/**
 * The alerter: resolves an alert through the escalation matrix to its targets, delivers to all
 * of them at once, and reports what became of each.
 *
 * `send` never throws. Alerts go out while procedures run — often ones that are already
 * failing — and a dead webhook must not turn a clean rollback into a crash. Failures are
 * logged (secrets redacted) and returned as `{target, ok: false, error}`.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { describeError } from '../../errors.ts';
import { createEmailChannel, createSmtpTransport, type SmtpTransport } from './email-channel.ts';
import { createLogChannel } from './log-channel.ts';
import { createPagerDutyChannel } from './pagerduty-channel.ts';
import { defaultRetryPolicy, defaultTimeoutMs, type RetryPolicy } from './post-json.ts';
import { createRedactor, type Redact } from '../../redact.ts';
import { escalationPath, resolveAlertRoute, type AlertRouting } from './routing.ts';
import { createSlackChannel } from './slack-channel.ts';
import type { Alert, AlertChannel, AlertChannelKind, AlertDelivery, AlertLogger } from './types.ts';

export interface SmtpSettings {
  /** SMTP_URL: `smtp://user:pass@host:port` or `smtps://…`. */
  url: string;
  /** MAIL_FROM. */
  from: string;
}

export interface AlerterOptions {
  routing: AlertRouting;
  logger: AlertLogger;
  /** SLACK_WEBHOOK_URL: posts for `#…` channels the routing file does not define. */
  slackDefaultWebhook?: string | undefined;
  /** PAGERDUTY_ROUTING_KEY: pages for issue types without their own key. */
  pagerDutyRoutingKey?: string | undefined;
  /** Defaults to https://events.pagerduty.com. */
  pagerDutyBaseUrl?: string | undefined;
  /** Without it, routing channels with `email` recipients report a failed delivery. */
  smtp?: SmtpSettings | undefined;
  /** PagerDuty `payload.source`; defaults to this host's name. */
  source?: string | undefined;
  /** Per attempt, for every provider; default 5 s. */
  timeoutMs?: number | undefined;
  retry?: Partial<RetryPolicy> | undefined;
}

export interface Alerter {
  /** Delivers to the log and every routed target; resolves with one result per target, never rejects. */
  send(alert: Alert): Promise<AlertDelivery[]>;
}

interface Target {
  channel: AlertChannel;
  kind: AlertChannelKind;
  alert: Alert;
  dedupKey?: string;
}

/**
 * Builds an alerter. Throws SHIP_ERR_CONFIG only for an unusable `smtp.url`, so a bad
 * configuration stops start-up instead of silently losing every email.
 */
export function createAlerter(options: AlerterOptions): Alerter {
  const { routing, logger } = options;
  const redact = createRedactor(secretsOf(options));
  const retry: RetryPolicy = { ...defaultRetryPolicy, ...options.retry };
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  const source = options.source ?? hostname();
  const transport: SmtpTransport | undefined = options.smtp === undefined ? undefined : createSmtpTransport({ url: options.smtp.url, timeoutMs });
  const externalConfigured =
    nonEmpty(options.slackDefaultWebhook) ||
    nonEmpty(options.pagerDutyRoutingKey) ||
    options.smtp !== undefined ||
    Object.keys(routing.channels).length > 0 ||
    Object.values(routing.matrix).some((entry) => entry.pagerdutyRoutingKey !== undefined);

  async function send(alert: Alert): Promise<AlertDelivery[]> {
    const route = resolveAlertRoute(routing, alert, {
      slackWebhook: options.slackDefaultWebhook,
      pagerDutyRoutingKey: options.pagerDutyRoutingKey,
    });
    const path = escalationPath(route.escalation);
    const enriched = withEscalation(alert, path);
    const targets: Target[] = [];
    const failures: AlertDelivery[] = [];

    for (const slack of route.slack) {
      targets.push({
        kind: 'slack',
        alert: enriched,
        channel: createSlackChannel({
          webhookUrl: slack.webhookUrl,
          channels: slack.channels,
          ...(slack.shared ? { note: `For ${slack.channels.join(', ')}` } : {}),
          timeoutMs,
          retry,
          redact,
        }),
      });
    }
    if (route.email !== undefined) {
      const label = route.email.channels.join(',');
      if (transport === undefined || options.smtp === undefined) {
        failures.push({
          target: `email:${label}`,
          kind: 'email',
          ok: false,
          error: `Channel ${label} has email recipients but SMTP is not configured. Set SMTP_URL and MAIL_FROM.`,
        });
      } else {
        targets.push({
          kind: 'email',
          alert: enriched,
          channel: createEmailChannel({
            transport,
            from: options.smtp.from,
            to: route.email.recipients,
            label,
            retry,
            redact,
          }),
        });
      }
    }
    if (route.pagerduty !== undefined) {
      // A trigger without a key could never be resolved, so make one and hand it back.
      const dedupKey = enriched.dedupKey ?? `shipshape-${alert.issueType}-${randomUUID()}`;
      targets.push({
        kind: 'pagerduty',
        alert: { ...enriched, dedupKey },
        dedupKey,
        channel: createPagerDutyChannel({
          routingKey: route.pagerduty.routingKey,
          baseUrl: options.pagerDutyBaseUrl,
          source,
          label: alert.issueType,
          timeoutMs,
          retry,
          redact,
        }),
      });
    }

    const log = createLogChannel({
      logger,
      redact,
      context: {
        escalation: path,
        targets: [...targets.map((t) => t.channel.name), ...failures.map((f) => f.target)],
        ...(route.unrouted.length > 0 ? { unrouted: route.unrouted } : {}),
      },
    });
    targets.unshift({ kind: 'log', alert: enriched, channel: log });

    const deliveries = await Promise.all(targets.map((target) => deliver(target, redact)));
    const results = [...deliveries, ...failures];

    for (const result of results) {
      if (result.ok) continue;
      const record = { target: result.target, event: alert.event, title: redact(alert.title), error: result.error };
      const paged = result.kind === 'pagerduty';
      safeLog(() =>
        paged || alert.severity === 'error' || alert.severity === 'critical'
          ? logger.error(record, paged ? 'alert delivery failed: the on-call was NOT paged' : 'alert delivery failed')
          : logger.warn(record, 'alert delivery failed'),
      );
    }
    if (route.unrouted.length > 0 && externalConfigured) {
      // Without any provider configured the log is the destination, so this would only be noise.
      safeLog(() =>
        logger.warn(
          { unrouted: route.unrouted, event: alert.event, routing: routing.source },
          `alert had nowhere to go for ${route.unrouted.join(', ')}; define them in the alert routing file (or set SLACK_WEBHOOK_URL / PAGERDUTY_ROUTING_KEY)`,
        ),
      );
    }
    return results;
  }

  return {
    async send(alert) {
      try {
        return await send(alert);
      } catch (error) {
        const message = redact(describeError(error));
        safeLog(() => logger.error({ event: alert.event, error: message }, 'alerting failed'));
        return [{ target: 'alerter', kind: 'log', ok: false, error: message }];
      }
    },
  };
}

async function deliver(target: Target, redact: Redact): Promise<AlertDelivery> {
  const base = {
    target: target.channel.name,
    kind: target.kind,
    ...(target.dedupKey === undefined ? {} : { dedupKey: target.dedupKey }),
  };
  try {
    await target.channel.send(target.alert);
    return { ...base, ok: true };
  } catch (error) {
    return { ...base, ok: false, error: redact(describeError(error)) };
  }
}

/** Failures name who to call next, so the escalation path rides along in their details. */
function withEscalation(alert: Alert, path: string): Alert {
  if (alert.severity !== 'error' && alert.severity !== 'critical') return alert;
  if (alert.details?.['escalation'] !== undefined) return alert;
  return { ...alert, details: { ...alert.details, escalation: path } };
}

function secretsOf(options: AlerterOptions): Array<string | undefined> {
  const secrets = [options.slackDefaultWebhook, options.pagerDutyRoutingKey, options.smtp?.url];
  for (const route of Object.values(options.routing.channels)) secrets.push(route.slack);
  for (const entry of Object.values(options.routing.matrix)) secrets.push(entry.pagerdutyRoutingKey);
  return secrets;
}

function nonEmpty(value: string | undefined): boolean {
  return value !== undefined && value !== '';
}

function safeLog(write: () => void): void {
  try {
    write();
  } catch {
    // A broken logger must not break alerting; there is nowhere left to report it.
  }
}
