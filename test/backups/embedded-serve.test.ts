/**
 * Finding 7: on the embedded database (no DATABASE_URL), backups while `shipshape serve` runs.
 * PGlite is open in serve's process only, so `shipshape db backup` asks serve's workers for the
 * dump and finishes its own run (verify, manifest); and the built-in daily backup, on from the
 * start, runs in serve's workers. Without workers serve cannot take the dump, and the backup
 * says so before changing anything.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/index.ts';
import { openDatabase } from '../../src/db/index.ts';
import { createLogger } from '../../src/log.ts';
import { prepareSchema } from '../../src/runtime/migrations.ts';
import { getSchedule } from '../../src/scheduler/schedules.ts';
import { runCli, startServeProcess } from '../helpers/cli.ts';
import { createStateDir } from '../helpers/postgres.ts';
import { eventually } from '../helpers/patience.ts';
import { addUsers, jsonOf, stepOutput } from '../helpers/backups.ts';

const logger = createLogger('silent');
const cleanups: Array<() => Promise<void>> = [];

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

describe('backups of the embedded database while `shipshape serve` runs', () => {
  test('`db backup` is dumped by serve and sealed by the CLI (exit 0); the daily backup runs in serve; without workers the backup refuses (exit 3)', async () => {
    const state = await createStateDir();
    cleanups.push(state.cleanup);
    const env = { STATE_DIR: state.path, SHIPSHAPE_OPERATOR: 'alice' };
    const setup = await openDatabase(loadConfig(env), logger);
    try {
      await prepareSchema(setup, logger, { migrate: true });
      await addUsers(setup.pool, ['ada@example.com', 'grace@example.com']);
    } finally {
      await setup.close();
    }

    const serve = await startServeProcess({ ...env, PORT: '0', SCHEDULER_POLL_MS: '250' });
    cleanups.push(async () => void (await serve.stop('SIGKILL')));
    try {
      const backup = await runCli(['db', 'backup', '--json'], env);
      assert.equal(backup.code, 0, `${backup.stdout}\n${backup.stderr}`);
      const report = jsonOf(backup);
      assert.equal(report.state, 'succeeded');
      const backupId = String(stepOutput(report, 'manifest').backupId);
      assert.match(JSON.stringify(report.prerequisites), new RegExp(`owned by process ${serve.child.pid} .*whose workers take the dump`));
      assert.match(backup.stderr, new RegExp(`dumped by process ${serve.child.pid}, which owns the embedded database`));

      const listed = await runCli(['db', 'backups', '--json'], env);
      assert.equal(listed.code, 0, listed.stderr);
      const entry = (jsonOf(listed).backups as Array<Record<string, unknown>>).find((b) => b.id === backupId);
      assert.equal(entry?.verified, 'yes');
      assert.equal(entry?.database, 'embedded');

      // The built-in schedule is on; make its occurrence due now rather than at 03:00.
      const guest = await openDatabase(loadConfig(env), logger, 'shipshape-test');
      try {
        await guest.pool.query("UPDATE schedules SET next_occurrence_at = now() WHERE name = 'daily-backup' AND NOT paused");
        const schedule = await eventually('the scheduled backup to finish', async () => {
          const current = await getSchedule(guest.pool, 'daily-backup');
          return current.lastOutcome?.startsWith('due ') ? current : undefined;
        });
        assert.equal(schedule.lastOutcomeOk, true, schedule.lastOutcome ?? '');
        assert.match(schedule.lastOutcome ?? '', /backup b-\S+-embedded\S* \(run r-\S+\) taken and verified; prune run r-\S+ succeeded/);
      } finally {
        await guest.close();
      }
    } finally {
      assert.equal(await serve.stop(), 0, serve.output());
    }

    const withoutWorkers = await startServeProcess({ ...env, PORT: '0' }, ['--no-workers']);
    cleanups.push(async () => void (await withoutWorkers.stop('SIGKILL')));
    try {
      const refused = await runCli(['db', 'backup'], env);
      assert.equal(refused.code, 3, `${refused.stdout}\n${refused.stderr}`);
      assert.match(refused.stdout + refused.stderr, new RegExp(`open in process ${withoutWorkers.child.pid}, which runs no workers`));
      assert.match(refused.stdout + refused.stderr, /restart `shipshape serve` without --no-workers/);
    } finally {
      await withoutWorkers.stop();
    }
  });
});
