/**
 * The engine through the real CLI in child processes (with the fixture procedures
 * registered): exit codes, --json, the two-operator flow, and crash safety — a run
 * SIGKILLed mid-step shows as interrupted and can be rolled back or resumed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { shipshapeProfile } from '../../src/app-profile.ts';
import { Migrator } from '../../src/db/migrator.ts';
import { createLogger } from '../../src/log.ts';
import { eventually } from '../helpers/patience.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { runFixtureCli, spawnFixtureCli } from '../helpers/fixture-spawn.ts';

let database: TestDatabase;
let pool: pg.Pool;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
  const outcome = await new Migrator(pool, shipshapeProfile.migrations, createLogger('silent')).up();
  if (outcome.error) throw outcome.error;
});

after(async () => {
  for (const cleanup of cleanups) await cleanup();
  await pool.end();
  await database.drop();
});

async function setup(): Promise<{ stateDir: string; prefix: string; env: (operator?: string) => Record<string, string> }> {
  const state = await createStateDir();
  cleanups.push(state.cleanup);
  return {
    stateDir: state.path,
    prefix: `c${randomBytes(4).toString('hex')}`,
    env: (operator = 'alice') => ({ DATABASE_URL: database.url, STATE_DIR: state.path, SHIPSHAPE_OPERATOR: operator }),
  };
}

async function tables(prefix: string): Promise<string[]> {
  const { rows } = await pool.query<{ tablename: string }>(
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE $1::text ORDER BY tablename",
    [`${prefix}\\_%`],
  );
  return rows.map((row) => row.tablename);
}

function parseJson(text: string): Record<string, unknown> {
  const value: unknown = JSON.parse(text);
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), 'expected one JSON object');
  return Object.fromEntries(Object.entries(value));
}

async function runStates(env: Record<string, string>): Promise<Array<{ runId: string; state: string }>> {
  const result = await runFixtureCli(['runs', '--json'], env);
  assert.equal(result.code, 0, result.stderr);
  const runs = parseJson(result.stdout).runs;
  assert.ok(Array.isArray(runs));
  return runs.map((run: unknown) => {
    assert.ok(typeof run === 'object' && run !== null && 'runId' in run && 'state' in run);
    return { runId: String(run.runId), state: String(run.state) };
  });
}

/** Starts a run whose step create-c waits on a marker file, and SIGKILLs it inside that step. */
async function crashMidRun(s: Awaited<ReturnType<typeof setup>>, marker: string): Promise<string> {
  const running = spawnFixtureCli(['fixture', 'tables-low', s.prefix, '--wait-for', marker], s.env());
  const runsDir = path.join(s.stateDir, 'runs');
  const runId = await eventually(
    'the run reaching its waiting step',
    async () => {
      for (const name of await readdir(runsDir).catch(() => [])) {
        if (!name.endsWith('.jsonl')) continue;
        const text = await readFile(path.join(runsDir, name), 'utf8').catch(() => '');
        if (text.includes('"note"') && text.includes('waiting for the marker file')) return name.replace(/\.jsonl$/, '');
      }
      return undefined;
    },
    { pollMs: 50 },
  );
  running.child.kill('SIGKILL');
  const result = await running.done;
  assert.equal(result.signal, 'SIGKILL');
  return runId;
}

describe('shipshape CLI: procedures and runs', () => {
  test('`procedures --json` lists each procedure with command, risk, duration, runbook section and when to use it', async () => {
    const s = await setup();
    const result = await runFixtureCli(['procedures', '--json'], s.env());
    assert.equal(result.code, 0, result.stderr);
    const procedures = parseJson(result.stdout).procedures;
    assert.ok(Array.isArray(procedures));
    const high = procedures.find((p: unknown) => typeof p === 'object' && p !== null && 'id' in p && p.id === 'fixture.tables-high');
    assert.deepEqual(
      { ...high },
      {
        id: 'fixture.tables-high',
        command: 'shipshape fixture tables-high',
        title: 'Fixture: three tables (high)',
        risk: 'high',
        expectedDuration: 'a second',
        runbookSection: 'Test fixture',
        whenToUse: 'Only in tests.',
        irreversibleSteps: [],
      },
    );
  });

  test('a medium-risk procedure without --yes, with no terminal, exits 2 and says to pass --yes', async () => {
    const s = await setup();
    const result = await runFixtureCli(['fixture', 'tables', s.prefix], s.env());
    assert.equal(result.code, 2);
    assert.match(result.stderr, /error\[SHIP_ERR_CONFIRMATION_REQUIRED\]: .*pass --yes/);
    assert.deepEqual(await tables(s.prefix), []);
  });

  test('--json prints exactly one parseable run report on stdout, logs and progress on stderr', async () => {
    const s = await setup();
    const result = await runFixtureCli(['fixture', 'tables', s.prefix, '--yes', '--json'], s.env());
    assert.equal(result.code, 0, result.stderr);
    const report = parseJson(result.stdout);
    assert.equal(report.state, 'succeeded');
    assert.equal(report.exitCode, 0);
    assert.equal(report.error, null);
    assert.ok(Array.isArray(report.steps));
    assert.deepEqual(
      report.steps.map((step: unknown) => (typeof step === 'object' && step !== null && 'status' in step ? step.status : undefined)),
      ['done', 'done', 'done'],
    );
    assert.match(result.stderr, /✓ create-c/);

    const failed = await runFixtureCli(['fixture', 'tables', `${s.prefix}f`, '--yes', '--json', '--fail-at', 'create-b'], s.env());
    assert.equal(failed.code, 1);
    const failedReport = parseJson(failed.stdout);
    assert.equal(failedReport.state, 'rolled-back');
    assert.equal(failedReport.exitCode, 1);
    assert.match(JSON.stringify(failedReport.error), /SHIP_ERR_STEP_FAILED/);
  });

  test('bad input exits 2 naming the argument or option at fault', async () => {
    const s = await setup();
    const badArgument = await runFixtureCli(['fixture', 'tables', 'Bad-Prefix', '--yes'], s.env());
    assert.equal(badArgument.code, 2);
    assert.match(badArgument.stderr, /<prefix>: must be lowercase/);
    const badOption = await runFixtureCli(['fixture', 'tables', s.prefix, '--yes', '--fail-at', 'nowhere'], s.env());
    assert.equal(badOption.code, 2);
    assert.match(badOption.stderr, /--fail-at: /);
  });

  test('a high-risk run exits 3 printing the approve command; self-approval is refused; another operator approves; resume completes', async () => {
    const s = await setup();
    const first = await runFixtureCli(['fixture', 'tables-high', s.prefix, '--yes'], s.env('alice'));
    assert.equal(first.code, 3);
    const runId = /shipshape approve (r-\d{8}-\d{6}-[0-9a-f]{4})/.exec(first.stdout)?.[1];
    assert.ok(runId, first.stdout);
    assert.deepEqual(await runStates(s.env()), [{ runId, state: 'awaiting-approval' }]);

    const self = await runFixtureCli(['approve', runId], s.env('alice'));
    assert.equal(self.code, 2);
    assert.match(self.stderr, /SHIP_ERR_SELF_APPROVAL/);

    const approved = await runFixtureCli(['approve', runId, '--json'], s.env('bob'));
    assert.equal(approved.code, 0, approved.stderr);
    assert.equal(parseJson(approved.stdout).approvedBy, 'bob');

    const resumed = await runFixtureCli(['runs', 'resume', runId, '--yes'], s.env('alice'));
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal((await tables(s.prefix)).length, 3);

    const shown = await runFixtureCli(['runs', 'show', runId, '--json'], s.env());
    const events = parseJson(shown.stdout).events;
    assert.ok(Array.isArray(events));
    const types = events.map((event: unknown) => (typeof event === 'object' && event !== null && 'type' in event ? event.type : undefined));
    assert.ok(types.includes('approval.granted'));
    assert.equal(types.filter((type: unknown) => type === 'run.ended').length, 2, 'one end per attempt: awaiting-approval, then succeeded');
  });
});

describe('shipshape CLI: crash safety', () => {
  test('a run killed mid-step shows as interrupted, and `runs rollback` undoes its completed steps', async () => {
    const s = await setup();
    const runId = await crashMidRun(s, path.join(s.stateDir, 'never'));
    assert.deepEqual(await tables(s.prefix), [`${s.prefix}_a`, `${s.prefix}_b`]);
    assert.deepEqual(await runStates(s.env()), [{ runId, state: 'interrupted' }]);

    const rolledBack = await runFixtureCli(['runs', 'rollback', runId], s.env());
    assert.equal(rolledBack.code, 0, rolledBack.stderr);
    assert.deepEqual(await tables(s.prefix), []);
    assert.deepEqual(await runStates(s.env()), [{ runId, state: 'rolled-back' }]);
  });

  test('a run killed mid-step can be resumed: it re-runs the unfinished step and completes', async () => {
    const s = await setup();
    const marker = path.join(s.stateDir, 'go');
    const runId = await crashMidRun(s, marker);
    assert.deepEqual(await runStates(s.env()), [{ runId, state: 'interrupted' }]);

    await writeFile(marker, 'go');
    const resumed = await runFixtureCli(['runs', 'resume', runId, '--json'], s.env());
    assert.equal(resumed.code, 0, resumed.stderr);
    const report = parseJson(resumed.stdout);
    assert.equal(report.state, 'succeeded');
    assert.equal(report.mode, 'resume');
    assert.deepEqual(await tables(s.prefix), [`${s.prefix}_a`, `${s.prefix}_b`, `${s.prefix}_c`]);

    const journal = await readFile(path.join(s.stateDir, 'runs', `${runId}.jsonl`), 'utf8');
    const started = journal.split('\n').filter((line) => line.includes('"step.started"'));
    assert.deepEqual(
      started.map((line) => /"step":"([^"]+)"/.exec(line)?.[1]),
      ['create-a', 'create-b', 'create-c', 'create-c'],
      'completed steps are not run again; the interrupted one is',
    );
  });

  test('`runs show` of an unknown or malformed run id exits 2', async () => {
    const s = await setup();
    const unknown = await runFixtureCli(['runs', 'show', 'r-20000101-000000-0000'], s.env());
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /SHIP_ERR_RUN_NOT_FOUND/);
    const malformed = await runFixtureCli(['runs', 'show', '../../etc/passwd', '--json'], s.env());
    assert.equal(malformed.code, 2);
    assert.equal(parseJson(malformed.stdout).exitCode, 2);
  });
});
