/**
 * The scheduler's and the maintenance window's settings: the runbook's defaults, and bad
 * values refused with the variable's name (a cron line, an abbreviation for a time zone).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/index.ts';
import { isShipError } from '../../src/errors.ts';

test('defaults: backups daily at 03:00 UTC; the window on the first Sunday at 02:00 Los Angeles time, 2 h, announced 72 h before', () => {
  const config = loadConfig({});
  assert.deepEqual(config.scheduler.backup, { recurrence: 'every day at 03:00', timeZone: 'UTC' });
  assert.equal(config.maintenance.window, 'first sunday of every month at 02:00');
  assert.equal(config.maintenance.timeZone, 'America/Los_Angeles');
  assert.equal(config.maintenance.durationMs, 2 * 3_600_000);
  assert.equal(config.maintenance.noticeMs, 72 * 3_600_000);
  assert.equal(config.maintenance.adminTokenOverlapMs, 24 * 3_600_000);
  assert.equal(config.maintenance.appLogDir, undefined);
  assert.equal(config.maintenance.appLogRetentionDays, 30);
  assert.equal(config.maintenance.rotateDatabasePassword, false);
});

test('a schedule or time zone Shipshape cannot honour stops start-up naming the variable', () => {
  const refused = (env: Record<string, string>, pattern: RegExp) =>
    assert.throws(
      () => loadConfig(env),
      (error: unknown) => isShipError(error) && error.code === 'SHIP_ERR_CONFIG' && pattern.test(error.message),
    );
  refused({ BACKUP_SCHEDULE: '0 3 * * *' }, /^BACKUP_SCHEDULE="0 3 \* \* \*" is invalid: must be a schedule like "every day at 03:00"/);
  refused({ MAINTENANCE_TIME_ZONE: 'PST' }, /^MAINTENANCE_TIME_ZONE="PST" is invalid: must be an IANA time zone/);
  refused({ MAINTENANCE_NOTICE: '72' }, /^MAINTENANCE_NOTICE=/);
  refused({ SMOKE_TEST_EMAIL: 'nobody' }, /^SMOKE_TEST_EMAIL=/);
});
