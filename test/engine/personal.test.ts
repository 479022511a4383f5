/**
 * Personal parameters (src/ops/engine/personal.ts): a run's journal, its database mirror and
 * its report never hold a value marked personal; the value lives in a private record that
 * resume reads; forgetting the person deletes that record and scrubs journals and run rows
 * written before values were kept apart.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { z } from 'zod';
import { shipshapeProfile } from '../../src/app-profile.ts';
import { loadConfig } from '../../src/config/index.ts';
import { Migrator } from '../../src/db/migrator.ts';
import { createLogger } from '../../src/log.ts';
import { approveRun, defineProcedure, resumeRun, rollbackRun, runProcedure, type EngineDeps, type RunReport } from '../../src/ops/engine/index.ts';
import { journalPath, runsDirectory } from '../../src/ops/engine/journal.ts';
import { forgetPerson, personal, personalRecordPath } from '../../src/ops/engine/personal.ts';
import { newRunId } from '../../src/ops/engine/run-id.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';

const logger = createLogger('silent');
const EMAIL = 'grace.hopper@example.com';

/** Everything a procedure can do with a personal value: describe it, note it, fail with it, return it. */
const seen: string[] = [];
const greetUser = defineProcedure({
  id: 'test.greet-user',
  command: 'test greet-user',
  title: 'Greet a user (fixture)',
  runbookSection: 'none (test fixture)',
  whenToUse: 'tests',
  risk: 'high',
  expectedDuration: 'a moment',
  issueType: 'application',
  params: z.object({ email: personal(z.string().trim().toLowerCase()), ticket: z.string() }),
  locks: () => [],
  prerequisites: [{ name: 'the address is known', run: async ({ params }) => ({ ok: true, detail: `found ${params.email}` }) }],
  steps: [
    {
      id: 'greet',
      title: 'Greet the user',
      describe: ({ params }) => [`email "hello" to ${params.email}`],
      async run(context) {
        seen.push(context.params.email);
        context.note(`greeted ${context.params.email.toUpperCase()}`);
        return { to: context.params.email };
      },
      async undo() {},
    },
  ],
  verification: [{ name: 'greeted', run: async ({ params }) => ({ ok: true, detail: `${params.email} was greeted` }) }],
});

let database: TestDatabase;
let pool: pg.Pool;
let state: { path: string; cleanup(): Promise<void> };

before(async () => {
  [database, state] = await Promise.all([createTestDatabase(), createStateDir()]);
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
  const outcome = await new Migrator(pool, shipshapeProfile.migrations, logger).up();
  if (outcome.error) throw outcome.error;
});

after(async () => {
  await pool.end();
  await database.drop();
  await state.cleanup();
});

const deps = (operator: string): EngineDeps => ({
  config: loadConfig({ DATABASE_URL: database.url, STATE_DIR: state.path, SHIPSHAPE_OPERATOR: operator, LOG_LEVEL: 'silent' }),
  logger,
});
const runIdOf = (report: RunReport): string => {
  assert.ok(report.runId, `a run was recorded: ${JSON.stringify(report.error)}`);
  return report.runId;
};
const mentions = (text: string): boolean => text.toLowerCase().includes(EMAIL);

async function mirroredText(runId: string): Promise<string> {
  const { rows } = await pool.query<{ text: string }>(
    `SELECT r.params::text || coalesce(string_agg(e.data::text, ' '), '') AS text
       FROM shipshape.runs r LEFT JOIN shipshape.run_events e ON e.run_id = r.id WHERE r.id = $1 GROUP BY r.params`,
    [runId],
  );
  assert.ok(rows[0], `run ${runId} is mirrored`);
  return rows[0].text;
}

describe('personal parameters', () => {
  test('the journal, the mirror and the report hold a placeholder; the private record (0600) holds the value, and resume uses it', async () => {
    const waiting = await runProcedure(greetUser, { email: EMAIL.toUpperCase(), ticket: 'T-1' }, { yes: true }, deps('alice'));
    const runId = runIdOf(waiting);
    assert.equal(waiting.state, 'awaiting-approval');
    const journal = await readFile(journalPath(state.path, runId), 'utf8');
    assert.ok(!mentions(journal), 'the journal does not name the person');
    assert.match(journal, /\[personal:email\]/);
    assert.ok(!mentions(JSON.stringify(waiting)), 'nor does the report');
    assert.ok(!mentions(await mirroredText(runId)), 'nor the database mirror');
    const record = personalRecordPath(state.path, runId);
    assert.equal((await stat(record)).mode & 0o777, 0o600);
    assert.match(await readFile(record, 'utf8'), new RegExp(EMAIL));

    await approveRun(runId, { config: deps('bob').config });
    const resumed = await resumeRun(runId, [greetUser], { yes: true }, deps('alice'));
    assert.equal(resumed.state, 'succeeded', JSON.stringify(resumed.error));
    assert.equal(seen.at(-1), EMAIL, 'the resumed step got the real address from the private record');
    const after = await readFile(journalPath(state.path, runId), 'utf8');
    assert.ok(!mentions(after), 'notes (in any letter case), describe lines, outputs and checks hold the placeholder');
    assert.ok(!mentions(await mirroredText(runId)));
  });

  test('forgetting the person deletes private records and scrubs older journals and run rows; such a run can be rolled back, not resumed', async () => {
    const waiting = await runProcedure(greetUser, { email: EMAIL, ticket: 'T-2' }, { yes: true }, deps('alice'));
    const runId = runIdOf(waiting);

    // What a Shipshape from before personal parameters wrote: the address in plain text.
    const legacyId = newRunId(new Date(Date.now() - 86_400_000));
    const legacyCreated = {
      seq: 1,
      at: new Date().toISOString(),
      type: 'run.created',
      runId: legacyId,
      procedure: { id: 'user.export', command: 'user export', title: 'Export', risk: 'low', issueType: 'security', runbookSection: 'x' },
      operator: 'alice',
      params: { email: 'Grace.Hopper@Example.com' },
      redactedParams: [],
      locks: [],
      plan: [],
    };
    await writeFile(journalPath(state.path, legacyId), `${JSON.stringify(legacyCreated)}\n`);
    await pool.query(
      `INSERT INTO shipshape.runs (id, procedure, command, risk, operator, params, state, started_at) VALUES ($1, 'user.export', 'user export', 'low', 'alice', $2, 'succeeded', now())`,
      [legacyId, JSON.stringify({ email: 'GRACE.HOPPER@EXAMPLE.COM' })],
    );
    await pool.query(`INSERT INTO shipshape.run_events (run_id, seq, at, type, data) VALUES ($1, 1, now(), 'run.created', $2)`, [
      legacyId,
      JSON.stringify(legacyCreated),
    ]);

    const forgotten = await forgetPerson(state.path, pool, EMAIL.toUpperCase());
    assert.ok(forgotten.records >= 2, `both runs' private records deleted (${JSON.stringify(forgotten)})`);
    assert.equal(forgotten.journals, 1, 'the older journal rewritten');
    assert.equal(forgotten.runRows, 2, 'its run row and event rewritten');
    for (const name of await readdir(runsDirectory(state.path))) {
      assert.ok(!mentions(await readFile(path.join(runsDirectory(state.path), name), 'utf8')), `${name} no longer names the person`);
    }
    const { rows } = await pool.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM shipshape.runs WHERE params::text ILIKE $1) + (SELECT count(*) FROM shipshape.run_events WHERE data::text ILIKE $1) AS n`,
      [`%${EMAIL}%`],
    );
    assert.equal(Number(rows[0]?.n), 0);
    assert.deepEqual(await forgetPerson(state.path, pool, EMAIL), { records: 0, journals: 0, runRows: 0 }, 'safe to repeat');

    await approveRun(runId, { config: deps('bob').config });
    const resumed = await resumeRun(runId, [greetUser], { yes: true }, deps('alice'));
    assert.equal(resumed.exitCode, 2);
    assert.match(resumed.error?.message ?? '', /named a person \(email\) whose details were erased since/);
    assert.match(resumed.next ?? '', /shipshape runs rollback/);
    const cancelled = await rollbackRun(runId, [greetUser], { yes: true }, deps('alice'));
    assert.equal(cancelled.exitCode, 0, JSON.stringify(cancelled.error));
  });
});
