/**
 * Recurring schedules as operators say them, and when they next happen.
 *
 *   every day at 03:00
 *   every sunday at 02:00
 *   first sunday of every month at 02:00      (first|second|third|fourth|last)
 *   day 15 of every month at 04:30            (days 1-28, which every month has)
 *   every 15 minutes | every 2 hours | every minute | every hour
 *
 * Times are wall-clock times in the schedule's time zone, so "first sunday of every month at
 * 02:00" in America/Los_Angeles is 02:00 there all year, PST or PDT (the runbook's "2:00 AM
 * PST"). Across a DST change the zoned-time rules apply: a time that does not exist that day
 * runs the gap's length later (02:30 → 03:30 on the spring-forward day), a time that happens
 * twice runs once, at the first. `every N minutes|hours` counts elapsed time from the Unix
 * epoch and ignores the zone: an hourly job stays hourly when the clocks change.
 *
 * Not cron: five fields cannot say "first Sunday" (cron ORs day-of-month with day-of-week),
 * and a phrase is what the runbook and `shipshape schedule list` show.
 */
import { ShipError } from '../errors.ts';
import { addDays, daysInMonth, localParts, resolveLocal, weekdayOf, type LocalDate, type LocalTime } from './zoned-time.ts';

export const weekdayNames = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;
export const ordinalNames = ['first', 'second', 'third', 'fourth', 'last'] as const;
export type Ordinal = (typeof ordinalNames)[number];

export type Recurrence =
  | { readonly kind: 'daily'; readonly time: LocalTime }
  | { readonly kind: 'weekly'; readonly weekday: number; readonly time: LocalTime }
  | { readonly kind: 'monthly-weekday'; readonly ordinal: Ordinal; readonly weekday: number; readonly time: LocalTime }
  | { readonly kind: 'monthly-day'; readonly day: number; readonly time: LocalTime }
  | { readonly kind: 'interval'; readonly everyMs: number };

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const EXAMPLES =
  '"every day at 03:00", "every sunday at 02:00", "first sunday of every month at 02:00", "day 15 of every month at 04:30" or "every 15 minutes"';

const TIME = '(\\d{1,2}):(\\d{2})';
const WEEKDAY = `(${weekdayNames.join('|')})`;
const patterns = {
  daily: new RegExp(`^(?:every day|daily) at ${TIME}$`),
  weekly: new RegExp(`^every ${WEEKDAY} at ${TIME}$`),
  monthlyWeekday: new RegExp(`^(${ordinalNames.join('|')}) ${WEEKDAY} of every month at ${TIME}$`),
  monthlyDay: new RegExp(`^day (\\d{1,2}) of every month at ${TIME}$`),
  interval: /^every (?:(\d+) )?(minute|minutes|hour|hours)$/,
};

/** Parses a phrase (case and spacing do not matter); throws SHIP_ERR_VALIDATION saying what is accepted. */
export function parseRecurrence(text: string): Recurrence {
  const phrase = text.trim().toLowerCase().replace(/\s+/g, ' ');
  let match: RegExpExecArray | null;
  if ((match = patterns.daily.exec(phrase))) return { kind: 'daily', time: timeOf(match[1], match[2], text) };
  if ((match = patterns.weekly.exec(phrase))) return { kind: 'weekly', weekday: weekdayIndex(match[1]), time: timeOf(match[2], match[3], text) };
  if ((match = patterns.monthlyWeekday.exec(phrase))) {
    const ordinal = ordinalNames.find((name) => name === match?.[1]) ?? 'first';
    return { kind: 'monthly-weekday', ordinal, weekday: weekdayIndex(match[2]), time: timeOf(match[3], match[4], text) };
  }
  if ((match = patterns.monthlyDay.exec(phrase))) {
    const day = Number(match[1]);
    if (day < 1 || day > 28) {
      throw new ShipError(
        'SHIP_ERR_VALIDATION',
        `"${text}": day ${day} is not in every month; use a day from 1 to 28, or "last <weekday> of every month at HH:MM".`,
      );
    }
    return { kind: 'monthly-day', day, time: timeOf(match[2], match[3], text) };
  }
  if ((match = patterns.interval.exec(phrase))) {
    const count = match[1] === undefined ? 1 : Number(match[1]);
    const unit = match[2]?.startsWith('hour') ? HOUR_MS : MINUTE_MS;
    if (count < 1 || count * unit > 24 * HOUR_MS) {
      throw new ShipError('SHIP_ERR_VALIDATION', `"${text}": an interval must be between 1 minute and 24 hours; for a daily time use "every day at HH:MM".`);
    }
    return { kind: 'interval', everyMs: count * unit };
  }
  throw new ShipError('SHIP_ERR_VALIDATION', `"${text.slice(0, 100)}" is not a schedule Shipshape understands. Write it like ${EXAMPLES}.`);
}

/** True when `parseRecurrence` accepts the phrase. */
export function isRecurrence(text: string): boolean {
  try {
    parseRecurrence(text);
    return true;
  } catch {
    return false;
  }
}

/** The canonical phrase: what `schedule list` shows and the database stores. */
export function formatRecurrence(rule: Recurrence): string {
  switch (rule.kind) {
    case 'daily':
      return `every day at ${formatTime(rule.time)}`;
    case 'weekly':
      return `every ${weekdayNames[rule.weekday]} at ${formatTime(rule.time)}`;
    case 'monthly-weekday':
      return `${rule.ordinal} ${weekdayNames[rule.weekday]} of every month at ${formatTime(rule.time)}`;
    case 'monthly-day':
      return `day ${rule.day} of every month at ${formatTime(rule.time)}`;
    case 'interval': {
      const hours = rule.everyMs % HOUR_MS === 0;
      const count = rule.everyMs / (hours ? HOUR_MS : MINUTE_MS);
      const unit = hours ? 'hour' : 'minute';
      return count === 1 ? `every ${unit}` : `every ${count} ${unit}s`;
    }
  }
}

/** The first occurrence strictly after `after`. */
export function nextOccurrence(rule: Recurrence, timeZone: string, after: Date): Date {
  if (rule.kind === 'interval') return new Date((Math.floor(after.getTime() / rule.everyMs) + 1) * rule.everyMs);
  // Start a day early: `after` may fall in the evening before a local date whose time is still ahead.
  const today = localParts(after, timeZone);
  const start: LocalDate = addDays({ year: today.year, month: today.month, day: today.day }, -1);
  if (rule.kind === 'daily' || rule.kind === 'weekly') {
    for (let offset = 0; offset <= 9; offset += 1) {
      const date = addDays(start, offset);
      if (rule.kind === 'weekly' && weekdayOf(date) !== rule.weekday) continue;
      const { instant } = resolveLocal(date, rule.time, timeZone);
      if (instant.getTime() > after.getTime()) return instant;
    }
  } else {
    for (let offset = 0; offset <= 14; offset += 1) {
      const month = ((start.month - 1 + offset) % 12) + 1;
      const year = start.year + Math.floor((start.month - 1 + offset) / 12);
      const date = rule.kind === 'monthly-day' ? { year, month, day: rule.day } : nthWeekday(year, month, rule.ordinal, rule.weekday);
      const { instant } = resolveLocal(date, rule.time, timeZone);
      if (instant.getTime() > after.getTime()) return instant;
    }
  }
  throw new ShipError('SHIP_ERR_INTERNAL', `No occurrence of "${formatRecurrence(rule)}" in ${timeZone} found after ${after.toISOString()}.`);
}

/** The next `count` occurrences after `after`, for previews and plans. */
export function upcomingOccurrences(rule: Recurrence, timeZone: string, after: Date, count: number): Date[] {
  const found: Date[] = [];
  let cursor = after;
  while (found.length < count) {
    cursor = nextOccurrence(rule, timeZone, cursor);
    found.push(cursor);
  }
  return found;
}

/** The date of the first…fourth or last `weekday` of a month. */
export function nthWeekday(year: number, month: number, ordinal: Ordinal, weekday: number): LocalDate {
  if (ordinal === 'last') {
    const lastDay = daysInMonth(year, month);
    const last: LocalDate = { year, month, day: lastDay };
    return { year, month, day: lastDay - ((weekdayOf(last) - weekday + 7) % 7) };
  }
  const first = weekdayOf({ year, month, day: 1 });
  const index = ordinalNames.indexOf(ordinal);
  return { year, month, day: 1 + ((weekday - first + 7) % 7) + 7 * index };
}

function timeOf(hours: string | undefined, minutes: string | undefined, text: string): LocalTime {
  const hour = Number(hours);
  const minute = Number(minutes);
  if (!(hour >= 0 && hour <= 23 && minute >= 0 && minute <= 59)) {
    throw new ShipError('SHIP_ERR_VALIDATION', `"${text}": the time must be HH:MM on a 24-hour clock, 00:00 to 23:59.`);
  }
  return { hour, minute };
}

function weekdayIndex(name: string | undefined): number {
  return weekdayNames.findIndex((weekday) => weekday === name);
}

function formatTime(time: LocalTime): string {
  return `${String(time.hour).padStart(2, '0')}:${String(time.minute).padStart(2, '0')}`;
}
