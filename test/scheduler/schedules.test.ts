/**
 * Recurring schedules on PostgreSQL: the built-ins exist paused and follow configuration,
 * pause/resume/add/remove do what `shipshape schedule` promises, an occurrence is claimed by
 * one transaction only, and with two worker instances on one database a due occurrence is
 * enqueued and run exactly once (here: the daily backup, then its prune).
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ExpoPushClient } from '../../src/adapters/expo-push.ts';
import { createMailer } from '../../src/adapters/mailer.ts';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { openDatabase, type Database } from '../../src/db/index.ts';
import { isShipError } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';
import { prepareSchema } from '../../src/runtime/migrations.ts';
import { startWorkers, type Workers } from '../../src/scheduler/workers.ts';
import {
  addSchedule,
  claimDueSchedules,
  ensureDefaultSchedules,
  getSchedule,
  listSchedules,
  pauseSchedule,
  planTick,
  recordTick,
  removeSchedule,
  resumeSchedule,
  validateSpec,
} from '../../src/scheduler/schedules.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { eventually } from '../helpers/workers.ts';

const logger = createLogger('silent');

describe('recurring schedules on PostgreSQL', () => {
  let server: TestDatabase;
  let state: { path: string; cleanup(): Promise<void> };
  let config: Config;
  let database: Database;

  before(async () => {
    server = await createTestDatabase();
    state = await createStateDir();
    config = loadConfig({ DATABASE_URL: server.url, STATE_DIR: state.path, LOG_LEVEL: 'silent', SCHEDULER_POLL_MS: '250' });
    database = await openDatabase(config, logger, 'shipshape-test');
    await prepareSchema(database, logger, { migrate: true });
  });
  after(async () => {
    await database?.close();
    await server?.drop();
    await state?.cleanup();
  });

  test('the daily backup exists from the start and is on, the maintenance window paused; both follow configuration', async () => {
    await ensureDefaultSchedules(database.pool, config, 'test');
    const [backup, maintenance] = await Promise.all([getSchedule(database.pool, 'daily-backup'), getSchedule(database.pool, 'maintenance-window')]);
    assert.equal(backup.paused, false, 'a default install backs itself up');
    assert.equal(backup.recurrence, 'every day at 03:00');
    assert.equal(backup.timeZone, 'UTC');
    assert.equal(backup.nextOccurrenceAt?.toISOString().slice(11), '03:00:00.000Z');
    assert.ok(backup.nextOccurrenceAt!.getTime() > Date.now());
    assert.equal(maintenance.paused, true);
    assert.equal(maintenance.recurrence, 'first sunday of every month at 02:00');
    assert.equal(maintenance.timeZone, 'America/Los_Angeles');
    assert.equal(maintenance.noticeMs, 72 * 3_600_000);
    assert.equal(maintenance.nextOccurrenceAt, null);

    const resumed = await resumeSchedule(database.pool, 'maintenance-window', 'test');
    assert.equal(resumed.paused, false);
    assert.ok(resumed.nextOccurrenceAt!.getTime() - Date.now() >= 72 * 3_600_000, 'the first window is at least the notice away');

    const changed = loadConfig({
      DATABASE_URL: server.url,
      STATE_DIR: state.path,
      LOG_LEVEL: 'silent',
      MAINTENANCE_WINDOW: 'third saturday of every month at 23:00',
      MAINTENANCE_TIME_ZONE: 'Europe/Berlin',
    });
    await ensureDefaultSchedules(database.pool, changed, 'test');
    const moved = await getSchedule(database.pool, 'maintenance-window');
    assert.equal(moved.recurrence, 'third saturday of every month at 23:00');
    assert.equal(moved.timeZone, 'Europe/Berlin');
    assert.equal(moved.paused, false, 'still on');
    assert.equal(
      new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', hour: '2-digit', minute: '2-digit', weekday: 'short' }).format(moved.nextOccurrenceAt!),
      'Sat 23:00',
    );

    const paused = await pauseSchedule(database.pool, 'maintenance-window', 'test');
    assert.equal(paused.paused, true);
    assert.equal(paused.nextOccurrenceAt, null);
    await ensureDefaultSchedules(database.pool, config, 'test');
  });

  test('pausing the daily backup opts out for good; one left paused, untouched, by an older version is turned on', async () => {
    await ensureDefaultSchedules(database.pool, config, 'test');
    await pauseSchedule(database.pool, 'daily-backup', 'operator:alice');
    await ensureDefaultSchedules(database.pool, config, 'system');
    assert.equal((await getSchedule(database.pool, 'daily-backup')).paused, true, 'the opt-out holds across restarts');

    // As versions before 0.2 left it: created paused, never paused or resumed by anyone since.
    await database.pool.query("UPDATE schedules SET paused = true, next_occurrence_at = NULL, updated_at = created_at WHERE name = 'daily-backup'");
    await ensureDefaultSchedules(database.pool, config, 'system');
    const upgraded = await getSchedule(database.pool, 'daily-backup');
    assert.equal(upgraded.paused, false);
    assert.ok(upgraded.nextOccurrenceAt !== null && upgraded.nextOccurrenceAt.getTime() > Date.now());
    await pauseSchedule(database.pool, 'daily-backup', 'test');
    await resumeSchedule(database.pool, 'daily-backup', 'test');
  });

  test('schedules are added, validated and removed; the built-ins cannot be removed or replaced', async () => {
    const reserved = ['daily-backup', 'maintenance-window'];
    const spec = validateSpec({ name: 'six-hourly-backup', task: 'backup', recurrence: 'Every 6 Hours', timeZone: 'UTC' });
    assert.equal(spec.recurrence, 'every 6 hours');
    const added = await addSchedule(database.pool, spec, { actor: 'test', start: true, reservedNames: reserved });
    assert.equal(added.paused, false);
    assert.ok(added.nextOccurrenceAt);
    await assert.rejects(addSchedule(database.pool, spec, { actor: 'test', start: true, reservedNames: reserved }), /exists already/);
    await assert.rejects(
      addSchedule(database.pool, { ...spec, name: 'daily-backup' }, { actor: 'test', start: true, reservedNames: reserved }),
      /built-in schedule/,
    );
    for (const bad of [
      { name: 'Bad Name', task: 'backup', recurrence: 'every day at 03:00', timeZone: 'UTC' },
      { name: 'x', task: 'reboot', recurrence: 'every day at 03:00', timeZone: 'UTC' },
      { name: 'x', task: 'backup', recurrence: 'at dawn', timeZone: 'UTC' },
      { name: 'x', task: 'backup', recurrence: 'every day at 03:00', timeZone: 'PST' },
      { name: 'x', task: 'backup', recurrence: 'every day at 03:00', timeZone: 'UTC', noticeMs: 3_600_000 },
    ]) {
      assert.throws(
        () => validateSpec(bad),
        (error: unknown) => isShipError(error) && error.code === 'SHIP_ERR_VALIDATION',
        JSON.stringify(bad),
      );
    }
    await assert.rejects(removeSchedule(database.pool, 'daily-backup'), /cannot be removed; pause it instead/);
    await removeSchedule(database.pool, 'six-hourly-backup');
    assert.deepEqual(
      (await listSchedules(database.pool)).map((s) => s.name),
      ['daily-backup', 'maintenance-window'],
    );
  });

  test('a due occurrence is claimed by one transaction only, and enqueued once', async () => {
    await addSchedule(database.pool, validateSpec({ name: 'claim-test', task: 'backup', recurrence: 'every day at 03:00', timeZone: 'UTC' }), {
      actor: 'test',
      start: true,
      reservedNames: [],
    });
    await database.pool.query("UPDATE schedules SET next_occurrence_at = now() - interval '1 minute' WHERE name = 'claim-test'");
    const first = await database.pool.connect();
    const second = await database.pool.connect();
    try {
      await first.query('BEGIN');
      await second.query('BEGIN');
      const claimed = await claimDueSchedules(first);
      assert.deepEqual(
        claimed.map((s) => s.name),
        ['claim-test'],
      );
      assert.deepEqual(await claimDueSchedules(second), [], 'the row held by the first is skipped, not waited for');
      const plan = planTick(claimed[0]!, new Date());
      assert.deepEqual(
        plan.runs.map((run) => run.phase),
        ['due'],
      );
      await recordTick(first, 'claim-test', plan);
      await first.query('COMMIT');
      assert.deepEqual(await claimDueSchedules(second), [], 'once recorded, the occurrence is no longer due');
      await second.query('COMMIT');
    } finally {
      first.release();
      second.release();
    }
    assert.match((await getSchedule(database.pool, 'claim-test')).lastOutcome ?? '', /^queued /);
    await removeSchedule(database.pool, 'claim-test');
  });

  test('the maintenance window is announced in its notice phase, and an unannounced window is skipped, not run', async () => {
    const dir = await createStateDir();
    const own = loadConfig({ DATABASE_URL: server.url, STATE_DIR: dir.path, LOG_LEVEL: 'silent', SCHEDULER_POLL_MS: '200' });
    const db = await openDatabase(own, logger, 'shipshape-test-notice');
    const workers = await startWorkers({
      config: own,
      database: db,
      logger,
      push: new ExpoPushClient({ pushUrl: 'http://127.0.0.1:9/--/api/v2/push/send' }),
      mailer: createMailer({ smtpUrl: undefined, from: 'test <t@example.com>' }, logger),
      instanceName: 'test-notice',
    });
    try {
      await resumeSchedule(database.pool, 'maintenance-window', 'test');
      // A window two hours away: inside its 72-hour notice period.
      const { rows } = await database.pool.query<{ at: Date }>(
        "UPDATE schedules SET next_occurrence_at = date_trunc('second', now()) + interval '2 hours' WHERE name = 'maintenance-window' RETURNING next_occurrence_at AS at",
      );
      const window = rows[0]!.at;
      await workers.tick();
      const announced = await eventually('the notice phase to run', async () => {
        const schedule = await getSchedule(database.pool, 'maintenance-window');
        return schedule.lastOutcome?.startsWith('notice ') ? schedule.lastOutcome : undefined;
      });
      assert.match(announced, new RegExp(`window ${window.toISOString().replace(/[.]/g, '\\.')} announced`));
      const banner = await database.pool.query<{ until: Date }>('SELECT banner_until AS until FROM app_state');
      assert.equal(banner.rows[0]?.until.getTime(), window.getTime() + own.maintenance.durationMs, 'the banner runs until the window ends');
      const notice = await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM maintenance_notices WHERE window_starts_at = $1', [window]);
      assert.equal(notice.rows[0]?.n, 1);

      // A window nobody announced (here: moved after its notice went out) comes due: skipped and alerted.
      await database.pool.query(
        "UPDATE schedules SET next_occurrence_at = now() - interval '1 second', notice_enqueued_for = now() - interval '1 second' WHERE name = 'maintenance-window'",
      );
      await workers.tick();
      const skipped = await eventually('the due phase to decide', async () => {
        const schedule = await getSchedule(database.pool, 'maintenance-window');
        return schedule.lastOutcome?.startsWith('due ') ? schedule.lastOutcome : undefined;
      });
      assert.match(skipped, /skipped: it was never announced to users/);
      const maintenance = await database.pool.query<{ on: boolean }>('SELECT maintenance_enabled AS on FROM app_state');
      assert.equal(maintenance.rows[0]?.on, false, 'the app was not taken down');
      await pauseSchedule(database.pool, 'maintenance-window', 'test');
    } finally {
      await workers.close();
      await db.close();
      await dir.cleanup();
    }
  });

  test('two worker instances on one database run a due daily backup once, then its prune', async () => {
    const states = [await createStateDir(), await createStateDir()];
    const instances: Array<{ workers: Workers; database: Database }> = [];
    try {
      for (const [i, dir] of states.entries()) {
        const own = loadConfig({
          DATABASE_URL: server.url,
          STATE_DIR: dir.path,
          LOG_LEVEL: 'silent',
          SCHEDULER_POLL_MS: '200',
          BACKUP_STORAGE_URL: `file://${path.join(state.path, 'shared-backups')}`,
        });
        const db = await openDatabase(own, logger, `shipshape-test-${i}`);
        const workers = await startWorkers({
          config: own,
          database: db,
          logger,
          push: new ExpoPushClient({ pushUrl: 'http://127.0.0.1:9/--/api/v2/push/send' }),
          mailer: createMailer({ smtpUrl: undefined, from: 'test <t@example.com>' }, logger),
          instanceName: `test-${i}`,
        });
        instances.push({ workers, database: db });
      }
      await resumeSchedule(database.pool, 'daily-backup', 'test');
      await database.pool.query("UPDATE schedules SET next_occurrence_at = now() - interval '1 second' WHERE name = 'daily-backup'");
      // Both tick at the same moment, as two instances would.
      await Promise.all(instances.map(({ workers }) => workers.tick()));
      const outcome = await eventually('the scheduled backup to finish', async () => {
        const schedule = await getSchedule(database.pool, 'daily-backup');
        return schedule.lastOutcome?.startsWith('due ') ? schedule.lastOutcome : undefined;
      });
      assert.match(outcome, /backup b-\S+ \(run r-\S+\) taken and verified; prune run r-\S+ succeeded/);
      const jobs = await database.pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM shipshape_queue.job WHERE name = 'shipshape-schedule' AND data->>'schedule' = 'daily-backup'",
      );
      assert.equal(jobs.rows[0]?.n, 1, 'the occurrence was enqueued once');
      const runs = (await Promise.all(states.map(async (dir) => readdir(path.join(dir.path, 'runs')).catch(() => []))))
        .flat()
        .filter((file) => file.endsWith('.jsonl'));
      assert.equal(runs.length, 2, 'one backup run and one prune run, on one of the instances');
      const next = await getSchedule(database.pool, 'daily-backup');
      assert.equal(next.lastOutcomeOk, true, 'recorded as a success (the watchdog counts failures)');
      assert.ok(next.nextOccurrenceAt!.getTime() > Date.now(), 'moved on to tomorrow');
      await pauseSchedule(database.pool, 'daily-backup', 'test');
    } finally {
      for (const { workers, database: db } of instances) {
        await workers.close();
        await db.close();
      }
      for (const dir of states) await dir.cleanup();
    }
  });
});
