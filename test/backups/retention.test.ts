import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BackupState } from '../../src/ops/backups/catalog.ts';
import { isoWeekOf, planRetention } from '../../src/ops/backups/retention.ts';

const now = new Date('2026-11-27T12:00:00Z');

function backup(iso: string, state: BackupState = 'good') {
  const createdAt = new Date(iso);
  const stamp = iso.replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return { id: `b-${stamp}-app`, state, createdAt };
}

function kept(decisions: ReturnType<typeof planRetention>): string[] {
  return decisions
    .filter((decision) => decision.keep)
    .map((decision) => decision.id)
    .sort();
}

describe('grandfather-father-son retention', () => {
  test('keeps the newest backup of each of the last N days, weeks and months and deletes the rest', () => {
    const entries = [
      backup('2026-11-27T02:00:00Z'),
      backup('2026-11-26T14:00:00Z'),
      backup('2026-11-26T02:00:00Z'), // older on the same day: not the day's newest
      backup('2026-11-25T02:00:00Z'),
      backup('2026-11-18T02:00:00Z'), // previous ISO week
      backup('2026-10-31T02:00:00Z'), // previous month
      backup('2026-09-30T02:00:00Z'), // two months back
    ];
    const decisions = planRetention(entries, { daily: 2, weekly: 2, monthly: 2 }, now);
    assert.deepEqual(kept(decisions), [
      'b-20261031-020000-app', // monthly 2026-10
      'b-20261118-020000-app', // weekly 2026-W47
      'b-20261126-140000-app', // daily 2026-11-26
      'b-20261127-020000-app', // newest, daily, weekly, monthly
    ]);
    const reasons = new Map(decisions.map((decision) => [decision.id, decision.reasons]));
    assert.deepEqual(reasons.get('b-20261126-020000-app'), ['outside the retention policy']);
    assert.ok(reasons.get('b-20261127-020000-app')?.includes('newest good backup'));
  });

  test('never deletes the newest good backup, even with a policy of zeros', () => {
    const decisions = planRetention([backup('2026-11-01T00:00:00Z'), backup('2026-10-01T00:00:00Z')], { daily: 0, weekly: 0, monthly: 0 }, now);
    assert.deepEqual(kept(decisions), ['b-20261101-000000-app']);
  });

  test('a newer backup that is not good does not take the place of the newest good one', () => {
    const decisions = planRetention(
      [backup('2026-11-27T02:00:00Z', 'failed-verification'), backup('2026-11-20T02:00:00Z')],
      { daily: 0, weekly: 0, monthly: 0 },
      now,
    );
    assert.deepEqual(kept(decisions), ['b-20261120-020000-app']);
    assert.deepEqual(decisions.find((decision) => !decision.keep)?.reasons, ['failed its latest verification']);
  });

  test('keeps incomplete backups younger than a day (they may still be uploading) and deletes older ones', () => {
    const decisions = planRetention(
      [backup('2026-11-27T11:00:00Z', 'incomplete'), backup('2026-11-25T11:00:00Z', 'incomplete'), backup('2026-11-20T00:00:00Z')],
      { daily: 7, weekly: 4, monthly: 6 },
      now,
    );
    assert.deepEqual(kept(decisions), ['b-20261120-000000-app', 'b-20261127-110000-app']);
  });

  test('ISO weeks start on Monday and belong to the year of their Thursday', () => {
    assert.equal(isoWeekOf(new Date('2026-11-23T00:00:00Z')), '2026-W48'); // a Monday
    assert.equal(isoWeekOf(new Date('2026-11-22T23:59:59Z')), '2026-W47'); // the Sunday before
    assert.equal(isoWeekOf(new Date('2027-01-01T00:00:00Z')), '2026-W53');
    assert.equal(isoWeekOf(new Date('2025-12-29T00:00:00Z')), '2026-W01');
  });
});
