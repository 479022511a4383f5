/**
 * The maintenance window: when it starts (MAINTENANCE_WINDOW in MAINTENANCE_TIME_ZONE, the
 * runbook's "first Sunday of each month, 2:00 AM PST", or an explicit `--at`), how long it
 * lasts (MAINTENANCE_DURATION), and the words users read about it.
 */
import type { Config } from '../../config/index.ts';
import { humanDuration } from '../../config/duration.ts';
import { parseScheduledFor } from '../../domain/scheduled-notifications.ts';
import { nextOccurrence, parseRecurrence } from '../../time/recurrence.ts';
import { describeInstant, localParts } from '../../time/zoned-time.ts';

export interface MaintenanceWindow {
  readonly startsAt: Date;
  readonly endsAt: Date;
  /** The zone its times are shown in. */
  readonly timeZone: string;
}

export function windowStartingAt(config: Config, startsAt: Date): MaintenanceWindow {
  return { startsAt, endsAt: new Date(startsAt.getTime() + config.maintenance.durationMs), timeZone: config.maintenance.timeZone };
}

/** The next window after `now` by MAINTENANCE_WINDOW. */
export function nextWindow(config: Config, now: Date): MaintenanceWindow {
  return windowStartingAt(config, nextOccurrence(parseRecurrence(config.maintenance.window), config.maintenance.timeZone, now));
}

/**
 * `--at` as an operator gives it: an ISO 8601 time with an offset in the future, or nothing
 * for the next window by MAINTENANCE_WINDOW. Throws SHIP_ERR_VALIDATION naming `--at`.
 */
export function resolveWindow(config: Config, at: string | undefined, now: Date): MaintenanceWindow {
  if (at === undefined || at === 'next') return nextWindow(config, now);
  return windowStartingAt(config, parseScheduledFor(at, now, '--at'));
}

/** "Sunday, March 1, 2026 at 2:00 AM PST" */
export function describeStart(window: MaintenanceWindow): string {
  return describeInstant(window.startsAt, window.timeZone);
}

/** "4:00 AM PST" */
export function describeEnd(window: MaintenanceWindow): string {
  return new Intl.DateTimeFormat('en-US', { timeZone: window.timeZone, hour: 'numeric', minute: '2-digit', timeZoneName: 'short' }).format(window.endsAt);
}

/** `20260301`: the window's date where it happens, for file names (the runbook's maintenance_plan_$(date +%Y%m%d).md). */
export function windowDateStamp(window: MaintenanceWindow): string {
  const local = localParts(window.startsAt, window.timeZone);
  return `${local.year}${String(local.month).padStart(2, '0')}${String(local.day).padStart(2, '0')}`;
}

export function windowDuration(window: MaintenanceWindow): string {
  return humanDuration(window.endsAt.getTime() - window.startsAt.getTime());
}

/** What users are told, in the runbook's words, for every channel. */
export function noticeTexts(window: MaintenanceWindow): {
  title: string;
  body: string;
  reminder: string;
  banner: string;
  emailSubject: string;
  emailBody: string;
  statusPage: string;
} {
  const when = describeStart(window);
  const duration = windowDuration(window);
  const body = `We will be performing scheduled maintenance on ${when}. Expected duration: ${duration}.`;
  return {
    title: 'Scheduled Maintenance',
    body,
    reminder: `Scheduled maintenance starts in one hour (${when}) and takes about ${duration}. The app will be unavailable meanwhile.`,
    banner: `Scheduled maintenance: ${when}, for about ${duration}. The app will be unavailable during that time.`,
    emailSubject: `Scheduled maintenance on ${when}`,
    emailBody: [
      'Hello,',
      '',
      `${body} The app will be unavailable during that time; your tasks are safe and will be there when it is back (by ${describeEnd(window)}).`,
      '',
      'Thank you for your patience.',
    ].join('\n'),
    statusPage: `Scheduled maintenance: ${when} to ${describeEnd(window)}. The app will be unavailable during the window.`,
  };
}
