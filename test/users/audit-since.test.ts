/**
 * `shipshape audit --since`: relative durations and dates, and a clear refusal of anything else.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSince } from '../../src/cli/commands/audit.ts';

test('--since takes 30m/24h/7d back from now, or a date or date-time', () => {
  const now = new Date('2026-03-10T12:00:00Z');
  assert.equal(parseSince('30m', now).toISOString(), '2026-03-10T11:30:00.000Z');
  assert.equal(parseSince('24h', now).toISOString(), '2026-03-09T12:00:00.000Z');
  assert.equal(parseSince('7d', now).toISOString(), '2026-03-03T12:00:00.000Z');
  assert.equal(parseSince('2026-01-31T09:00Z', now).toISOString(), '2026-01-31T09:00:00.000Z');
  assert.equal(parseSince('2026-01-31', now).toISOString(), '2026-01-31T00:00:00.000Z');
  for (const bad of ['yesterday', '7w', '-1h', '2026-13-45', '']) assert.throws(() => parseSince(bad, now), /duration like 30m/, bad);
});
