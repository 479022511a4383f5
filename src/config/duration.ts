/**
 * Durations as operators type them: `90s`, `5m`, `1h`, `1h30m`, `0s`.
 *
 * A bare number is refused rather than guessed: "5" could mean seconds or minutes, and
 * the difference matters when it is how long users are warned before being disconnected.
 */
import { z } from 'zod';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: SECOND, m: MINUTE, h: HOUR, d: DAY };
const PART = /(\d+)(ms|s|m|h|d)/g;
const WHOLE = /^(?:\d+(?:ms|s|m|h|d))+$/;

/** `1h30m` → 5 400 000; undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (!WHOLE.test(trimmed)) return undefined;
  let total = 0;
  for (const match of trimmed.matchAll(PART)) total += Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? 0);
  return Number.isSafeInteger(total) ? total : undefined;
}

/** 300 000 → `5m`, 5 400 000 → `1h30m`, 1 500 → `1.5s`: the shortest exact form for messages. */
export function formatDurationMs(ms: number): string {
  if (ms < 1_000) return `${ms}ms`;
  if (ms % 1_000 !== 0) return `${ms / 1_000}s`;
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [
    ['d', DAY],
    ['h', HOUR],
    ['m', MINUTE],
    ['s', SECOND],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}

/** `5 minutes`, `1 hour 30 minutes`, `90 seconds`: for text users read. */
export function humanDuration(ms: number): string {
  const totalSeconds = Math.round(ms / 1_000);
  const hours = Math.floor(totalSeconds / 3_600);
  const minutes = Math.floor((totalSeconds % 3_600) / 60);
  const seconds = totalSeconds % 60;
  const unit = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const parts = [hours > 0 ? unit(hours, 'hour') : '', minutes > 0 ? unit(minutes, 'minute') : '', seconds > 0 ? unit(seconds, 'second') : ''];
  const text = parts.filter(Boolean).join(' ');
  return text === '' ? unit(0, 'second') : text;
}

/**
 * A zod schema for a duration, output in milliseconds. It also takes the milliseconds it
 * produced, because procedure parameters are parsed again from the run journal on resume.
 */
export const durationSchema = z.union([z.number().int().min(0), z.string()]).transform((value, context) => {
  if (typeof value === 'number') return value;
  const ms = parseDuration(value);
  if (ms === undefined) {
    context.addIssue({ code: 'custom', message: `"${value}" is not a duration; write it like 90s, 5m, 1h or 1h30m` });
    return z.NEVER;
  }
  return ms;
});
