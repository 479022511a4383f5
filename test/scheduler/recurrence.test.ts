import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isShipError } from '../../src/errors.ts';
import { formatRecurrence, nextOccurrence, nthWeekday, parseRecurrence, upcomingOccurrences } from '../../src/time/recurrence.ts';
import { planTick, type Schedule } from '../../src/scheduler/schedules.ts';
import { isTimeZone, localParts, resolveLocal } from '../../src/time/zoned-time.ts';

const LA = 'America/Los_Angeles';
const iso = (dates: Date[]) => dates.map((date) => date.toISOString());
const wall = (date: Date, timeZone: string) => {
  const p = localParts(date, timeZone);
  return `${p.year}-${String(p.month).padStart(2, '0')}-${String(p.day).padStart(2, '0')} ${String(p.hour).padStart(2, '0')}:${String(p.minute).padStart(2, '0')}`;
};

describe('recurrence phrases', () => {
  it('parses what operators write and prints one canonical form', () => {
    assert.equal(formatRecurrence(parseRecurrence('First  Sunday of every month at 2:00')), 'first sunday of every month at 02:00');
    assert.equal(formatRecurrence(parseRecurrence('daily at 03:00')), 'every day at 03:00');
    assert.equal(formatRecurrence(parseRecurrence('every Friday at 17:30')), 'every friday at 17:30');
    assert.equal(formatRecurrence(parseRecurrence('last saturday of every month at 23:59')), 'last saturday of every month at 23:59');
    assert.equal(formatRecurrence(parseRecurrence('day 15 of every month at 04:30')), 'day 15 of every month at 04:30');
    assert.equal(formatRecurrence(parseRecurrence('every 90 minutes')), 'every 90 minutes');
    assert.equal(formatRecurrence(parseRecurrence('every 2 hours')), 'every 2 hours');
    assert.equal(formatRecurrence(parseRecurrence('every hour')), 'every hour');
  });

  it('refuses what it cannot honour, saying what it accepts', () => {
    for (const text of ['0 2 * * 0', 'every day at 24:00', 'day 31 of every month at 02:00', 'every 0 minutes', 'every 25 hours', 'sometimes']) {
      assert.throws(
        () => parseRecurrence(text),
        (error: unknown) => isShipError(error) && error.code === 'SHIP_ERR_VALIDATION',
        text,
      );
    }
  });

  it('knows IANA time zones and refuses abbreviations like PST', () => {
    assert.equal(isTimeZone('America/Los_Angeles'), true);
    assert.equal(isTimeZone('UTC'), true);
    assert.equal(isTimeZone('PST'), false);
    assert.equal(isTimeZone('Mars/Olympus_Mons'), false);
  });
});

describe('next occurrence', () => {
  it('runs "first sunday of every month at 02:00" at 02:00 Los Angeles time every month, PST and PDT alike', () => {
    const year = upcomingOccurrences(parseRecurrence('first sunday of every month at 02:00'), LA, new Date('2026-01-01T00:00:00Z'), 12);
    assert.deepEqual(
      year.map((date) => wall(date, LA)),
      [
        '2026-01-04',
        '2026-02-01',
        '2026-03-01',
        '2026-04-05',
        '2026-05-03',
        '2026-06-07',
        '2026-07-05',
        '2026-08-02',
        '2026-09-06',
        '2026-10-04',
        '2026-11-01',
        '2026-12-06',
      ].map((day) => `${day} 02:00`),
    );
    // Winter months are UTC−8, summer months UTC−7: the instant moves, the wall clock does not.
    assert.equal(year[0]!.toISOString(), '2026-01-04T10:00:00.000Z');
    assert.equal(year[3]!.toISOString(), '2026-04-05T09:00:00.000Z');
  });

  it('handles months whose first Sunday is the 1st and the 7th', () => {
    const rule = parseRecurrence('first sunday of every month at 02:00');
    // February 2026 starts on a Sunday; June 2026 starts on a Monday.
    assert.equal(nextOccurrence(rule, LA, new Date('2026-01-20T00:00:00Z')).toISOString(), '2026-02-01T10:00:00.000Z');
    assert.equal(nextOccurrence(rule, LA, new Date('2026-05-10T00:00:00Z')).toISOString(), '2026-06-07T09:00:00.000Z');
    assert.deepEqual(nthWeekday(2026, 2, 'first', 0), { year: 2026, month: 2, day: 1 });
    assert.deepEqual(nthWeekday(2026, 6, 'first', 0), { year: 2026, month: 6, day: 7 });
    assert.deepEqual(nthWeekday(2026, 5, 'last', 0), { year: 2026, month: 5, day: 31 });
  });

  it('takes the 02:00 of the fall-back Sunday once, after the repeated hour (November 1, 2026 is both the first Sunday and the end of DST)', () => {
    const rule = parseRecurrence('first sunday of every month at 02:00');
    const november = nextOccurrence(rule, LA, new Date('2026-10-05T00:00:00Z'));
    assert.equal(november.toISOString(), '2026-11-01T10:00:00.000Z');
    assert.equal(wall(november, LA), '2026-11-01 02:00');
  });

  it('moves a time that does not exist on the spring-forward day forward by the gap, and keeps the next days at their time', () => {
    // 2026-03-08: Los Angeles clocks jump from 02:00 PST to 03:00 PDT.
    const days = upcomingOccurrences(parseRecurrence('every day at 02:30'), LA, new Date('2026-03-06T12:00:00Z'), 3);
    assert.deepEqual(iso(days), ['2026-03-07T10:30:00.000Z', '2026-03-08T10:30:00.000Z', '2026-03-09T09:30:00.000Z']);
    assert.deepEqual(
      days.map((date) => wall(date, LA)),
      ['2026-03-07 02:30', '2026-03-08 03:30', '2026-03-09 02:30'],
    );
    assert.equal(resolveLocal({ year: 2026, month: 3, day: 8 }, { hour: 2, minute: 0 }, LA).adjustment, 'gap');
    assert.equal(resolveLocal({ year: 2026, month: 3, day: 8 }, { hour: 2, minute: 0 }, LA).instant.toISOString(), '2026-03-08T10:00:00.000Z');
  });

  it('runs a time that happens twice on the fall-back day once, at the first of the two', () => {
    const rule = parseRecurrence('every day at 01:30');
    const first = nextOccurrence(rule, LA, new Date('2026-10-31T12:00:00Z'));
    assert.equal(first.toISOString(), '2026-11-01T08:30:00.000Z');
    assert.equal(resolveLocal({ year: 2026, month: 11, day: 1 }, { hour: 1, minute: 30 }, LA).adjustment, 'overlap');
    // Right after it ran, the next run is the next day, not the repeated 01:30 PST an hour later.
    assert.equal(nextOccurrence(rule, LA, first).toISOString(), '2026-11-02T09:30:00.000Z');
  });

  it('keeps weekly and monthly times in zones with half-hour DST and on the other side of the world', () => {
    const howe = upcomingOccurrences(parseRecurrence('every sunday at 02:00'), 'Australia/Lord_Howe', new Date('2026-03-30T00:00:00Z'), 3);
    assert.deepEqual(
      howe.map((date) => wall(date, 'Australia/Lord_Howe')),
      ['2026-04-05 02:00', '2026-04-12 02:00', '2026-04-19 02:00'],
    );
    const sydney = nextOccurrence(parseRecurrence('day 4 of every month at 02:30'), 'Australia/Sydney', new Date('2026-10-01T00:00:00Z'));
    assert.equal(wall(sydney, 'Australia/Sydney'), '2026-10-04 03:30');
  });

  it('counts intervals in elapsed time, so an hourly job stays hourly across a DST change', () => {
    const hours = upcomingOccurrences(parseRecurrence('every hour'), LA, new Date('2026-03-08T08:30:00Z'), 3);
    assert.deepEqual(iso(hours), ['2026-03-08T09:00:00.000Z', '2026-03-08T10:00:00.000Z', '2026-03-08T11:00:00.000Z']);
  });
});

describe('wall-clock time in UTC', () => {
  it('is read from the Date itself and agrees with Intl to the second, BC years and leap days included', () => {
    // What Intl.DateTimeFormat says a UTC clock shows: the reading every other zone still gets.
    const intl = new Intl.DateTimeFormat('en-US', {
      timeZone: 'UTC',
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
    const weekdays = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
    const instants = [Date.UTC(2024, 1, 29, 23, 59, 59, 999), Date.UTC(1970, 0, 1), Date.UTC(-50, 5, 15, 12, 30, 5), Date.UTC(9999, 11, 31, 0, 0, 1)];
    for (let t = Date.UTC(2025, 0, 1); t < Date.UTC(2027, 0, 1); t += 7_777_777_777 / 61) instants.push(Math.floor(t));
    for (const t of instants) {
      const parts = Object.fromEntries(intl.formatToParts(new Date(t)).map((part) => [part.type, part.value]));
      const year = parts.era === 'BC' || parts.era === 'B' ? 1 - Number(parts.year) : Number(parts.year);
      const expected = {
        year,
        month: Number(parts.month),
        day: Number(parts.day),
        hour: Number(parts.hour),
        minute: Number(parts.minute),
        second: Number(parts.second),
        weekday: weekdays.indexOf(parts.weekday ?? ''),
      };
      assert.deepEqual(localParts(new Date(t), 'UTC'), expected, new Date(t).toISOString());
    }
  });
});

describe('a tick of a schedule', () => {
  const base: Schedule = {
    name: 'maintenance-window',
    task: 'maintenance',
    recurrence: 'first sunday of every month at 02:00',
    timeZone: LA,
    noticeMs: 72 * 3_600_000,
    maxLatenessMs: 30 * 60_000,
    params: {},
    isDefault: true,
    paused: false,
    nextOccurrenceAt: new Date('2026-03-01T10:00:00Z'),
    noticeEnqueuedFor: null,
    lastOccurrenceAt: null,
    lastEnqueuedAt: null,
    lastOutcome: null,
    lastOutcomeOk: null,
    lastOutcomeAt: null,
    updatedAt: new Date('2026-01-01T00:00:00Z'),
    updatedBy: 'test',
  };

  it('queues the notice 72 hours before, once, and the run at the window, then moves to the next month', () => {
    const notice = planTick(base, new Date('2026-02-26T10:00:05Z'));
    assert.deepEqual(
      notice.runs.map((run) => run.phase),
      ['notice'],
    );
    assert.equal(notice.nextOccurrenceAt.toISOString(), '2026-03-01T10:00:00.000Z');
    const again = planTick({ ...base, noticeEnqueuedFor: notice.noticeEnqueuedFor }, new Date('2026-02-27T00:00:00Z'));
    assert.deepEqual(again.runs, []);
    const due = planTick({ ...base, noticeEnqueuedFor: notice.noticeEnqueuedFor }, new Date('2026-03-01T10:00:01Z'));
    assert.deepEqual(
      due.runs.map((run) => [run.phase, run.occurrence]),
      [['due', '2026-03-01T10:00:00.000Z']],
    );
    assert.equal(due.nextOccurrenceAt.toISOString(), '2026-04-05T09:00:00.000Z');
  });

  it('skips an occurrence missed by more than its lateness limit and runs missed ones only once', () => {
    const late = planTick({ ...base, noticeEnqueuedFor: base.nextOccurrenceAt }, new Date('2026-03-01T12:00:00Z'));
    assert.deepEqual(late.runs, []);
    assert.match(late.skipped?.reason ?? '', /missed by 2h/);
    assert.equal(late.nextOccurrenceAt.toISOString(), '2026-04-05T09:00:00.000Z');

    const daily: Schedule = {
      ...base,
      name: 'daily-backup',
      task: 'backup',
      recurrence: 'every day at 03:00',
      timeZone: 'UTC',
      noticeMs: null,
      maxLatenessMs: 12 * 3_600_000,
      nextOccurrenceAt: new Date('2026-03-01T03:00:00Z'),
    };
    const caughtUp = planTick(daily, new Date('2026-03-01T09:00:00Z'));
    assert.deepEqual(
      caughtUp.runs.map((run) => run.phase),
      ['due'],
    );
    assert.equal(caughtUp.nextOccurrenceAt.toISOString(), '2026-03-02T03:00:00.000Z');
  });
});
