/**
 * Wall-clock time in an IANA time zone, from `Intl.DateTimeFormat` alone (no tz database of
 * our own to keep current: Node's ICU carries it).
 *
 * Turning a local date and time into an instant follows Temporal's `disambiguation:
 * 'compatible'`, the rule calendars and cron daemons agree on:
 * - a time that does not exist that day (the clocks jump from 02:00 to 03:00) is moved
 *   forward by the length of the gap: 02:00 → 03:00, 02:30 → 03:30;
 * - a time that happens twice (the clocks go back from 02:00 to 01:00) is the first of the two.
 */
import { ShipError } from '../errors.ts';

export interface LocalDate {
  readonly year: number;
  /** 1-12 */
  readonly month: number;
  /** 1-31 */
  readonly day: number;
}

export interface LocalTime {
  /** 0-23 */
  readonly hour: number;
  /** 0-59 */
  readonly minute: number;
}

export interface LocalDateTime extends LocalDate, LocalTime {
  readonly second: number;
  /** 0 = Sunday … 6 = Saturday */
  readonly weekday: number;
}

export interface ResolvedInstant {
  readonly instant: Date;
  /** `gap`: the time did not exist and was moved forward; `overlap`: it happened twice and the first was taken. */
  readonly adjustment: 'exact' | 'gap' | 'overlap';
}

const DAY_MS = 86_400_000;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      weekday: 'short',
      era: 'short',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/**
 * True for IANA zone names Node's ICU knows (`America/Los_Angeles`, `Europe/Berlin`, `UTC`).
 * Abbreviations are refused even where ICU maps them: "EST" is a fixed UTC−5 zone with no
 * daylight saving, so "EST" for New York would be an hour off half the year.
 */
export function isTimeZone(name: string): boolean {
  if (name.trim() === '' || name !== name.trim()) return false;
  if (name === 'UTC') return true;
  if (!name.includes('/')) return false;
  try {
    formatterFor(name);
    return true;
  } catch {
    return false;
  }
}

/** Throws SHIP_ERR_VALIDATION naming the zone when it is unknown. */
export function checkTimeZone(name: string): string {
  if (!isTimeZone(name)) {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `"${name.slice(0, 80)}" is not a time zone. Use an IANA name such as America/Los_Angeles, Europe/Berlin or UTC (not an abbreviation like PST).`,
    );
  }
  return name;
}

const WEEKDAYS: Readonly<Record<string, number>> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

/** What a clock in `timeZone` shows at `instant`. */
export function localParts(instant: Date, timeZone: string): LocalDateTime {
  // UTC (the backup schedule's default) needs no Intl: the first DateTimeFormat maps ICU's
  // locale and zone data in, ≈3 MB of an idle server's resident memory (bench/startup.ts).
  if (timeZone === 'UTC' && !Number.isNaN(instant.getTime())) return utcParts(instant);
  const values: Record<string, string> = {};
  for (const part of formatterFor(timeZone).formatToParts(instant)) values[part.type] = part.value;
  const yearOfEra = Number(values.year);
  return {
    // Years before 1 AD come back as "BC" years; schedules never go there, but stay exact.
    year: values.era === 'BC' || values.era === 'B' ? 1 - yearOfEra : yearOfEra,
    month: Number(values.month),
    day: Number(values.day),
    hour: Number(values.hour),
    minute: Number(values.minute),
    second: Number(values.second),
    weekday: WEEKDAYS[values.weekday ?? ''] ?? new Date(instant).getUTCDay(),
  };
}

function utcParts(instant: Date): LocalDateTime {
  return {
    // Astronomical years (0 = 1 BC), as the BC conversion above gives.
    year: instant.getUTCFullYear(),
    month: instant.getUTCMonth() + 1,
    day: instant.getUTCDate(),
    hour: instant.getUTCHours(),
    minute: instant.getUTCMinutes(),
    second: instant.getUTCSeconds(),
    weekday: instant.getUTCDay(),
  };
}

/** How far `timeZone` is ahead of UTC at `instant`, in milliseconds (−8 h in Los Angeles in winter). */
export function offsetAt(instant: Date, timeZone: string): number {
  const local = localParts(instant, timeZone);
  const asUtc = Date.UTC(local.year, local.month - 1, local.day, local.hour, local.minute, local.second);
  return asUtc - Math.floor(instant.getTime() / 1_000) * 1_000;
}

/**
 * The instant a clock in `timeZone` shows `date` at `time` (seconds 0), disambiguated as the
 * module comment says. Assumes at most one offset change within a day either side, which
 * holds for every zone in the tz database.
 */
export function resolveLocal(date: LocalDate, time: LocalTime, timeZone: string): ResolvedInstant {
  const wall = Date.UTC(date.year, date.month - 1, date.day, time.hour, time.minute, 0);
  const before = offsetAt(new Date(wall - DAY_MS), timeZone);
  const after = offsetAt(new Date(wall + DAY_MS), timeZone);
  const candidates = [...new Set([wall - before, wall - after])].filter((instant) => wall - offsetAt(new Date(instant), timeZone) === instant);
  if (candidates.length === 0) return { instant: new Date(wall - before), adjustment: 'gap' };
  const first = Math.min(...candidates);
  return { instant: new Date(first), adjustment: candidates.length > 1 ? 'overlap' : 'exact' };
}

/** The calendar date `days` after `date` (negative: before). */
export function addDays(date: LocalDate, days: number): LocalDate {
  const shifted = new Date(Date.UTC(date.year, date.month - 1, date.day) + days * DAY_MS);
  return { year: shifted.getUTCFullYear(), month: shifted.getUTCMonth() + 1, day: shifted.getUTCDate() };
}

/** 0 = Sunday … 6 = Saturday, for a calendar date (the same everywhere). */
export function weekdayOf(date: LocalDate): number {
  return new Date(Date.UTC(date.year, date.month - 1, date.day)).getUTCDay();
}

export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** "Sunday, March 1, 2026 at 2:00 AM PST": for messages people read. */
export function describeInstant(instant: Date, timeZone: string): string {
  const date = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'long', month: 'long', day: 'numeric', year: 'numeric' }).format(instant);
  const time = new Intl.DateTimeFormat('en-US', { timeZone, hour: 'numeric', minute: '2-digit', timeZoneName: 'short' }).format(instant);
  return `${date} at ${time}`;
}

/** "2026-03-01 02:00 PST (UTC−08:00)"-style text without the prose, for tables. */
export function shortInstant(instant: Date, timeZone: string): string {
  const local = localParts(instant, timeZone);
  const pad = (n: number) => String(n).padStart(2, '0');
  const zone =
    new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'short' }).formatToParts(instant).find((part) => part.type === 'timeZoneName')?.value ??
    timeZone;
  return `${local.year}-${pad(local.month)}-${pad(local.day)} ${pad(local.hour)}:${pad(local.minute)} ${zone}`;
}
