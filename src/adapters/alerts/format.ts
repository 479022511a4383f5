/**
 * Provider-neutral pieces of an alert's rendering, shared by the Slack and email channels so
 * both say the same thing in the same order.
 */
import type { Alert, AlertSeverity } from './types.ts';

const severityMarks: Record<AlertSeverity, string> = {
  info: 'ℹ️',
  warning: '⚠️',
  error: '❌',
  critical: '🚨',
};

export function severityMark(severity: AlertSeverity): string {
  return severityMarks[severity];
}

/** `[CRITICAL] Database restore failed` */
export function headline(alert: Alert): string {
  return `[${alert.severity.toUpperCase()}] ${alert.title}`;
}

/** Ordered label/value facts: what kind of alert, then the caller's details. */
export function facts(alert: Alert): Array<[label: string, value: string]> {
  const list: Array<[string, string]> = [
    ['Severity', alert.severity],
    ['Issue type', alert.issueType],
    ['Event', alert.event],
  ];
  for (const [key, value] of Object.entries(alert.details ?? {})) list.push([key, String(value)]);
  return list;
}

/**
 * Cuts to at most `max` UTF-16 code units (the unit Slack's and PagerDuty's length limits are
 * checked in), marking the cut and never splitting a surrogate pair.
 */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max - 1);
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}
