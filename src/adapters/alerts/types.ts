/**
 * The vocabulary of alerting: what an alert is, what a channel does with one, and what
 * the alerter reports back. Procedures build `Alert`s; channels deliver them.
 */

/** The runbook's Escalation Matrix rows. */
export const issueTypes = ['database', 'security', 'infrastructure', 'application'] as const;
export type IssueType = (typeof issueTypes)[number];

/** Same names and order as PagerDuty's `payload.severity`, so no mapping can drift. */
export const alertSeverities = ['info', 'warning', 'error', 'critical'] as const;
export type AlertSeverity = (typeof alertSeverities)[number];

export const pageActions = ['trigger', 'resolve'] as const;
export type PageAction = (typeof pageActions)[number];

export interface Alert {
  /** Which row of the escalation matrix owns this alert. */
  issueType: IssueType;
  severity: AlertSeverity;
  /** What happened, dotted: `procedure.started`, `procedure.succeeded`, `procedure.failed`. */
  event: string;
  /** One line; becomes the Slack header, the email subject and the PagerDuty summary. */
  title: string;
  /** Plain text body; may span lines. */
  text: string;
  /** Routing-file channel names the procedure wants this in, e.g. `['#ops-backups', 'ops-team']`. */
  channelHints?: string[];
  /**
   * Correlates a page's trigger with its resolve. Required for `page: 'resolve'`; for a
   * trigger without one the alerter makes one up and returns it in the delivery result.
   */
  dedupKey?: string;
  /** Page the issue type's on-call through PagerDuty (trigger), or close that page (resolve). */
  page?: PageAction;
  /** Small structured facts (run id, backup name, duration). Never put secrets here. */
  details?: Record<string, string | number | boolean>;
}

/**
 * One way of delivering an alert. `send` resolves once the provider accepted the alert and
 * rejects with a `ShipError` (whose message is free of secrets) when it did not.
 */
export interface AlertChannel {
  /** Names the destination without secrets, e.g. `slack:#incidents`; used in logs and results. */
  readonly name: string;
  send(alert: Alert): Promise<void>;
}

export type AlertChannelKind = 'log' | 'slack' | 'email' | 'pagerduty';

/** What became of one target of one alert. */
export interface AlertDelivery {
  /** The channel's secret-free name, e.g. `log`, `slack:#ops-backups`, `email:ops-team`, `pagerduty:database`. */
  target: string;
  kind: AlertChannelKind;
  ok: boolean;
  /** Why delivery failed; secrets already redacted. */
  error?: string;
  /** For PagerDuty: the dedup key used, to resolve the page later. */
  dedupKey?: string;
}

/**
 * The slice of a pino logger alerting uses (pino's `Logger` satisfies it). Calls follow
 * pino's `(mergingObject, message)` convention.
 */
export interface AlertLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
