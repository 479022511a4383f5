/**
 * Alerting for Shipshape: the runbook's Escalation Matrix as routing, and delivery to the log,
 * Slack incoming webhooks, email (SMTP) and PagerDuty Events API v2.
 */
export { createAlerter, type Alerter, type AlerterOptions, type SmtpSettings } from './alerter.ts';
export {
  defaultAlertRouting,
  escalationPath,
  loadAlertRouting,
  parseAlertRouting,
  resolveAlertRoute,
  type AlertRoute,
  type AlertRouting,
  type ChannelRoute,
  type EscalationPolicy,
  type RouteDefaults,
} from './routing.ts';
export { createLogChannel, type LogChannelOptions } from './log-channel.ts';
export { createSlackChannel, slackPayload, type SlackChannelOptions, type SlackPayload } from './slack-channel.ts';
export {
  alertEmail,
  createEmailChannel,
  createSmtpTransport,
  type EmailChannelOptions,
  type SmtpTransport,
  type SmtpTransportOptions,
} from './email-channel.ts';
export {
  createPagerDutyChannel,
  defaultPagerDutyBaseUrl,
  pagerDutyEvent,
  type PagerDutyChannelOptions,
  type PagerDutyEvent,
} from './pagerduty-channel.ts';
export { defaultRetryPolicy, defaultTimeoutMs, type RetryPolicy } from './post-json.ts';
export { createRedactor, type Redact } from '../../redact.ts';
export {
  alertSeverities,
  issueTypes,
  pageActions,
  type Alert,
  type AlertChannel,
  type AlertChannelKind,
  type AlertDelivery,
  type AlertLogger,
  type AlertSeverity,
  type IssueType,
  type PageAction,
} from './types.ts';
