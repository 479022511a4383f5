/**
 * The log as an alert channel: the embedded default, and the record of every alert whatever
 * else is configured, so an operator reading the log sees what was (or should have been) sent.
 */
import type { Redact } from '../../redact.ts';
import type { Alert, AlertChannel, AlertLogger } from './types.ts';

export interface LogChannelOptions {
  logger: AlertLogger;
  /** Scrubs the alert's text and details before they are logged. */
  redact?: Redact;
  /** Extra, secret-free fields for the log record (e.g. the escalation path, unrouted channels). */
  context?: Record<string, unknown>;
}

export function createLogChannel(options: LogChannelOptions): AlertChannel {
  const redact = options.redact ?? ((text: string) => text);
  return {
    name: 'log',
    async send(alert) {
      const record = { ...options.context, alert: scrubbed(alert, redact) };
      const message = `alert: ${redact(alert.title)}`;
      if (alert.severity === 'info') options.logger.info(record, message);
      else if (alert.severity === 'warning') options.logger.warn(record, message);
      else options.logger.error(record, message);
    },
  };
}

function scrubbed(alert: Alert, redact: Redact): Alert {
  const details: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(alert.details ?? {})) {
    details[key] = typeof value === 'string' ? redact(value) : value;
  }
  return {
    ...alert,
    title: redact(alert.title),
    text: redact(alert.text),
    ...(alert.details === undefined ? {} : { details }),
  };
}
