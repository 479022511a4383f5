/**
 * The runner through its API, against a real PostgreSQL database: gates, approvals,
 * rollback, locks, redaction, interrupts and alerts. Fixture procedures create and drop
 * tables, so "state restored" is checked in the catalog.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { Alert } from '../../src/adapters/alerts/index.ts';
import { shipshapeProfile } from '../../src/app-profile.ts';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { Migrator } from '../../src/db/migrator.ts';
import { createLogger } from '../../src/log.ts';
import {
  approveRun,
  listRuns,
  loadRun,
  refuseRun,
  resumeRun,
  rollbackRun,
  runProcedure,
  type EngineDeps,
  type Prompter,
  type RunReport,
} from '../../src/ops/engine/index.ts';
import { JournalWriter, journalPath } from '../../src/ops/engine/journal.ts';
import { advisoryKey, lockFilePath } from '../../src/ops/engine/locks.ts';
import { eventually } from '../helpers/patience.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { fixtureProcedures, irreversible, tablesHigh, tablesLow, tablesMedium } from '../helpers/fixture-procedures.ts';

const ADMIN_TOKEN = 'admin-token-that-must-stay-secret-42';
const logger = createLogger('silent');

let database: TestDatabase;
let pool: pg.Pool;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  database = await createTestDatabase();
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
  const outcome = await new Migrator(pool, shipshapeProfile.migrations, logger).up();
  if (outcome.error) throw outcome.error;
});

after(async () => {
  for (const cleanup of cleanups) await cleanup();
  await pool.end();
  await database.drop();
});

interface Setup {
  readonly config: Config;
  readonly stateDir: string;
  readonly prefix: string;
  readonly alerts: Alert[];
  deps(overrides?: Partial<EngineDeps>, operator?: string): EngineDeps;
}

async function setup(): Promise<Setup> {
  const state = await createStateDir();
  cleanups.push(state.cleanup);
  const configFor = (operator: string) =>
    loadConfig({ DATABASE_URL: database.url, STATE_DIR: state.path, SHIPSHAPE_OPERATOR: operator, LOG_LEVEL: 'silent', ADMIN_TOKEN });
  const alerts: Alert[] = [];
  const config = configFor('alice');
  return {
    config,
    stateDir: state.path,
    prefix: `t${randomBytes(4).toString('hex')}`,
    alerts,
    deps: (overrides = {}, operator = 'alice') => ({
      config: configFor(operator),
      logger,
      alerts: {
        async send(alert: Alert) {
          alerts.push(alert);
        },
      },
      ...overrides,
    }),
  };
}

async function tables(prefix: string): Promise<string[]> {
  const { rows } = await pool.query<{ tablename: string }>(
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE $1::text ORDER BY tablename",
    [`${prefix}\\_%`],
  );
  return rows.map((row) => row.tablename);
}

async function journalTypes(stateDir: string, runId: string): Promise<string[]> {
  const text = await readFile(journalPath(stateDir, runId), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const parsed: unknown = JSON.parse(line);
      const type = typeof parsed === 'object' && parsed !== null && 'type' in parsed ? parsed.type : undefined;
      const step = typeof parsed === 'object' && parsed !== null && 'step' in parsed ? parsed.step : undefined;
      return step === undefined ? String(type) : `${String(type)}:${String(step)}`;
    });
}

function runIdOf(report: RunReport): string {
  assert.ok(report.runId, `expected a recorded run, got ${JSON.stringify(report.error)}`);
  return report.runId;
}

/** Resolves once the run's journal shows the event (the run goes on in the background). */
async function waitForEvent(stateDir: string, type: string): Promise<string> {
  return eventually(
    `a journal reaching ${type}`,
    async () => {
      const names = await readdir(path.join(stateDir, 'runs')).catch(() => []);
      for (const name of names) {
        const runId = name.replace(/\.jsonl$/, '');
        if ((await journalTypes(stateDir, runId)).includes(type)) return runId;
      }
      return undefined;
    },
    { pollMs: 50 },
  );
}

function prompter(answers: { confirm: boolean; typed?: string }, asked: string[] = []): Prompter {
  return {
    async confirm(question) {
      asked.push(question);
      return answers.confirm;
    },
    async typed(question, expected) {
      asked.push(question);
      return (answers.typed ?? '') === expected;
    },
  };
}

describe('dry run', () => {
  test('prints every step with its describe() lines, evaluates prerequisites read-only, and changes nothing', async () => {
    const s = await setup();
    const report = await runProcedure(tablesMedium, { prefix: s.prefix }, { dryRun: true }, s.deps());
    assert.equal(report.state, 'planned');
    assert.equal(report.exitCode, 0);
    assert.equal(report.runId, null);
    assert.deepEqual(
      report.steps.map((step) => step.describe),
      ['a', 'b', 'c'].map((x) => [`CREATE TABLE IF NOT EXISTS "${s.prefix}_${x}" (id integer)`]),
    );
    assert.deepEqual(
      report.prerequisites.map((check) => check.ok),
      [true, true],
    );
    assert.deepEqual(report.plannedVerification, ['all three tables exist']);
    assert.deepEqual(report.locks, [`fixture:${s.prefix}`]);
    assert.deepEqual(await tables(s.prefix), []);
    assert.deepEqual(await listRuns(s.stateDir), []);
    assert.deepEqual(await readdir(path.join(s.stateDir, 'locks')).catch(() => []), []);
  });

  test('reports an unmet prerequisite with exit 3 and still changes nothing', async () => {
    const s = await setup();
    await pool.query(`CREATE TABLE "${s.prefix}_a" (id integer)`);
    const report = await runProcedure(tablesMedium, { prefix: s.prefix }, { dryRun: true }, s.deps());
    assert.equal(report.exitCode, 3);
    assert.equal(report.error?.code, 'SHIP_ERR_PREREQUISITE_FAILED');
    assert.deepEqual(await tables(s.prefix), [`${s.prefix}_a`]);
  });
});

describe('gates', () => {
  test('a medium-risk run without --yes and without a terminal is refused with exit 2 before anything is recorded', async () => {
    const s = await setup();
    const report = await runProcedure(tablesMedium, { prefix: s.prefix }, {}, s.deps());
    assert.equal(report.exitCode, 2);
    assert.equal(report.error?.code, 'SHIP_ERR_CONFIRMATION_REQUIRED');
    assert.match(report.error?.message ?? '', /--yes/);
    assert.equal(report.state, 'not-started');
    assert.deepEqual(await listRuns(s.stateDir), []);
    assert.deepEqual(await tables(s.prefix), []);
  });

  test('on a terminal, a medium-risk run asks, and a "no" changes nothing', async () => {
    const s = await setup();
    const asked: string[] = [];
    const refused = await runProcedure(tablesMedium, { prefix: s.prefix }, {}, s.deps({ prompter: prompter({ confirm: false }, asked) }));
    assert.equal(refused.exitCode, 2);
    assert.match(asked[0] ?? '', /fixture tables/);
    assert.deepEqual(await tables(s.prefix), []);

    const confirmed = await runProcedure(tablesMedium, { prefix: s.prefix }, {}, s.deps({ prompter: prompter({ confirm: true }) }));
    assert.equal(confirmed.state, 'succeeded');
    assert.ok((await journalTypes(s.stateDir, runIdOf(confirmed))).includes('gate'));
  });

  test('irreversible steps need their own confirmation, separate from --yes', async () => {
    const s = await setup();
    const refused = await runProcedure(irreversible, { prefix: s.prefix }, { yes: true }, s.deps());
    assert.equal(refused.exitCode, 2);
    assert.match(refused.error?.message ?? '', /drop-archive cannot be undone/);
    assert.match(refused.error?.message ?? '', /--yes-irreversible/);

    const mistyped = await runProcedure(irreversible, { prefix: s.prefix }, {}, s.deps({ prompter: prompter({ confirm: true, typed: 'yes' }) }));
    assert.equal(mistyped.exitCode, 2);
    assert.deepEqual(await tables(s.prefix), []);

    const typed = await runProcedure(irreversible, { prefix: s.prefix }, {}, s.deps({ prompter: prompter({ confirm: true, typed: 'drop-archive' }) }));
    assert.equal(typed.state, 'succeeded');
  });
});

describe('prerequisites', () => {
  test('an unmet prerequisite stops the run with exit 3 before any step, and says what to do', async () => {
    const s = await setup();
    await pool.query(`CREATE TABLE "${s.prefix}_b" (id integer)`);
    const report = await runProcedure(tablesMedium, { prefix: s.prefix }, { yes: true }, s.deps());
    assert.equal(report.exitCode, 3);
    assert.equal(report.state, 'failed');
    assert.equal(report.error?.code, 'SHIP_ERR_PREREQUISITE_FAILED');
    assert.match(report.error?.message ?? '', /tables do not exist yet: 1 table\(s\) already exist — drop them first/);
    assert.deepEqual(
      report.steps.map((step) => step.status),
      ['skipped', 'skipped', 'skipped'],
    );
    assert.deepEqual(await tables(s.prefix), [`${s.prefix}_b`]);
  });
});

describe('rollback on failure', () => {
  test('a failing step undoes the completed steps in reverse order and exits 1 with the database restored', async () => {
    const s = await setup();
    const report = await runProcedure(tablesMedium, { prefix: s.prefix, failAt: 'create-c' }, { yes: true }, s.deps());
    assert.equal(report.exitCode, 1);
    assert.equal(report.state, 'rolled-back');
    assert.equal(report.error?.code, 'SHIP_ERR_STEP_FAILED');
    assert.match(report.error?.message ?? '', /create-c .*failed: fixture failure in create-c/);
    assert.match(report.error?.message ?? '', /undone \(in that order\): create-b, create-a; nothing this run changed is still in effect/);
    assert.deepEqual(
      report.steps.map((step) => step.status),
      ['undone', 'undone', 'failed'],
    );
    assert.deepEqual(await tables(s.prefix), []);
    const types = await journalTypes(s.stateDir, runIdOf(report));
    assert.ok(types.indexOf('step.undone:create-b') < types.indexOf('step.undone:create-a'));
    assert.equal((await loadRun(s.stateDir, runIdOf(report))).state, 'rolled-back');
  });

  test('a failure in the first step leaves the run failed with nothing to undo', async () => {
    const s = await setup();
    const report = await runProcedure(tablesMedium, { prefix: s.prefix, failAt: 'create-a' }, { yes: true }, s.deps());
    assert.equal(report.exitCode, 1);
    assert.equal(report.state, 'failed');
    assert.deepEqual(
      report.steps.map((step) => step.status),
      ['failed', 'skipped', 'skipped'],
    );
  });

  test('a failed verification counts as a failure and rolls everything back', async () => {
    const s = await setup();
    const report = await runProcedure(tablesMedium, { prefix: s.prefix, failVerification: true }, { yes: true }, s.deps());
    assert.equal(report.exitCode, 1);
    assert.equal(report.state, 'rolled-back');
    assert.match(report.error?.message ?? '', /Verification failed — all three tables exist: told to fail/);
    assert.deepEqual(
      report.verification.map((check) => check.ok),
      [false],
    );
    assert.deepEqual(await tables(s.prefix), []);
  });

  test('an undo that fails ends with exit 4 saying what is still in effect, and `runs rollback` finishes once the cause is fixed', async () => {
    const s = await setup();
    const blocker = path.join(s.stateDir, 'undo-blocker');
    await writeFile(blocker, 'x');
    const report = await runProcedure(
      tablesMedium,
      { prefix: s.prefix, failAt: 'create-c', failUndoOf: 'create-a', undoBlocker: blocker },
      { yes: true },
      s.deps(),
    );
    assert.equal(report.exitCode, 4);
    assert.equal(report.state, 'needs-attention');
    assert.equal(report.error?.code, 'SHIP_ERR_ROLLBACK_FAILED');
    assert.match(report.error?.message ?? '', /undoing step create-a failed: fixture undo failure in create-a/);
    assert.match(report.error?.message ?? '', /Still in effect: create-a\. Undone: create-b\./);
    assert.match(report.next ?? '', new RegExp(`shipshape runs rollback ${runIdOf(report)}`));
    assert.deepEqual(await tables(s.prefix), [`${s.prefix}_a`]);

    await rm(blocker);
    const retried = await rollbackRun(runIdOf(report), fixtureProcedures, { yes: true }, s.deps());
    assert.equal(retried.exitCode, 0);
    assert.equal(retried.state, 'rolled-back');
    assert.deepEqual(await tables(s.prefix), []);
  });

  test('a completed irreversible step stops the rollback with exit 4 and names what remains', async () => {
    const s = await setup();
    const report = await runProcedure(irreversible, { prefix: s.prefix, failLast: true }, { yesIrreversible: true }, s.deps());
    assert.equal(report.exitCode, 4);
    assert.equal(report.state, 'needs-attention');
    assert.match(report.error?.message ?? '', /step drop-archive cannot be undone: the archive rows are deleted for good/);
    assert.match(report.error?.message ?? '', /Still in effect: create-a, drop-archive/);
    assert.match(report.next ?? '', /a human must decide/);
    assert.deepEqual(await tables(s.prefix), [`${s.prefix}_a`]);
  });

  test("the operator's interrupt tells the current step, then rolls back completed steps", async () => {
    const s = await setup();
    const controller = new AbortController();
    const marker = path.join(s.stateDir, 'never-created');
    const running = runProcedure(tablesLow, { prefix: s.prefix, waitFor: marker }, {}, s.deps({ signal: controller.signal }));
    await waitForEvent(s.stateDir, 'step.started:create-c');
    controller.abort(new Error('interrupted by SIGINT'));
    const report = await running;
    assert.equal(report.exitCode, 1);
    assert.equal(report.state, 'rolled-back');
    assert.match(report.steps[2]?.error ?? '', /interrupted by the operator/);
    assert.deepEqual(await tables(s.prefix), []);
  });
});

describe('approvals', () => {
  test('a high-risk run waits for a second operator, refuses self-approval, and resumes once another operator approves', async () => {
    const s = await setup();
    const first = await runProcedure(tablesHigh, { prefix: s.prefix }, { yes: true }, s.deps());
    const runId = runIdOf(first);
    assert.equal(first.exitCode, 3);
    assert.equal(first.state, 'awaiting-approval');
    assert.equal(first.error?.code, 'SHIP_ERR_APPROVAL_REQUIRED');
    assert.match(first.next ?? '', new RegExp(`shipshape approve ${runId}`));
    assert.deepEqual(await tables(s.prefix), []);
    assert.ok(s.alerts.some((alert) => alert.event === 'procedure.approval-requested'));

    await assert.rejects(approveRun(runId, { config: s.config }), { code: 'SHIP_ERR_SELF_APPROVAL' });
    const early = await resumeRun(runId, fixtureProcedures, { yes: true }, s.deps());
    assert.equal(early.exitCode, 3);
    assert.equal((await loadRun(s.stateDir, runId)).state, 'awaiting-approval');

    const approval = await approveRun(runId, { config: s.deps({}, 'bob').config });
    assert.equal(approval.approvedBy, 'bob');
    assert.equal(approval.requestedBy, 'alice');
    const resumed = await resumeRun(runId, fixtureProcedures, { yes: true }, s.deps());
    assert.equal(resumed.exitCode, 0);
    assert.equal(resumed.state, 'succeeded');
    assert.equal(resumed.approval?.by, 'bob');
    assert.equal((await tables(s.prefix)).length, 3);
  });

  test('a refused run ends failed with who and why in its journal, nothing ran, and it can be neither approved nor resumed', async () => {
    const s = await setup();
    const runId = runIdOf(await runProcedure(tablesHigh, { prefix: s.prefix }, { yes: true }, s.deps()));
    await assert.rejects(refuseRun(runId, { reason: '  ' }, { config: s.deps({}, 'bob').config }), { code: 'SHIP_ERR_VALIDATION' });
    const refusal = await refuseRun(runId, { reason: 'not during the sale' }, { config: s.deps({}, 'bob').config });
    assert.equal(refusal.refusedBy, 'bob');
    assert.equal(refusal.withdrawn, false);
    const record = await loadRun(s.stateDir, runId);
    assert.equal(record.state, 'failed');
    assert.equal(record.lastEnd?.exitCode, 3);
    assert.equal(record.lastEnd?.error?.code, 'SHIP_ERR_APPROVAL_REFUSED');
    assert.match(record.lastEnd?.error?.message ?? '', /refused by bob: not during the sale/);
    assert.ok(record.entries.some((e) => e.type === 'gate' && e.gate === 'approval' && e.outcome === 'refused' && e.by === 'bob'));
    assert.ok(record.steps.every((step) => step.status === 'skipped'));
    assert.deepEqual(await tables(s.prefix), []);
    await assert.rejects(approveRun(runId, { config: s.deps({}, 'carol').config }), { code: 'SHIP_ERR_VALIDATION' });
    await assert.rejects(refuseRun(runId, { reason: 'twice' }, { config: s.deps({}, 'carol').config }), { code: 'SHIP_ERR_VALIDATION' });
    assert.notEqual((await resumeRun(runId, fixtureProcedures, { yes: true }, s.deps())).exitCode, 0);

    // The requester refusing her own run withdraws it.
    const own = runIdOf(await runProcedure(tablesHigh, { prefix: s.prefix }, { yes: true }, s.deps()));
    const withdrawn = await refuseRun(own, { reason: 'wrong prefix' }, { config: s.config });
    assert.equal(withdrawn.withdrawn, true);
    assert.match((await loadRun(s.stateDir, own)).lastEnd?.error?.message ?? '', /withdrawn by its requester alice/);
  });

  test('an expired approval does not count; a fresh one does', async () => {
    const s = await setup();
    const runId = runIdOf(await runProcedure(tablesHigh, { prefix: s.prefix }, {}, s.deps()));
    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await approveRun(runId, { config: s.deps({}, 'bob').config, now: () => twoHoursAgo });
    const expired = await resumeRun(runId, fixtureProcedures, { yes: true }, s.deps());
    assert.equal(expired.exitCode, 3);
    assert.match(expired.error?.message ?? '', /expired/);
    assert.equal((await loadRun(s.stateDir, runId)).state, 'awaiting-approval');
    assert.deepEqual(await tables(s.prefix), []);

    await approveRun(runId, { config: s.deps({}, 'bob').config, policy: { approvalTtlMs: 60_000, allowInlineApproval: false } });
    const resumed = await resumeRun(runId, fixtureProcedures, { yes: true }, s.deps());
    assert.equal(resumed.state, 'succeeded');
  });

  test('operators deciding on one run at once: the journal takes one decision at a time, and a resume never runs over a refusal', async () => {
    const s = await setup();
    const seqsOf = async (runId: string) => (await loadRun(s.stateDir, runId)).entries.map((entry) => entry.seq);
    const consecutive = (seqs: number[]) => seqs.every((seq, index) => seq === index + 1);

    // Approve and refuse together: each acts on the run as it really is when its events land.
    const decided = runIdOf(await runProcedure(tablesHigh, { prefix: s.prefix }, { yes: true }, s.deps()));
    const [approved, refused] = await Promise.allSettled([
      approveRun(decided, { config: s.deps({}, 'bob').config }),
      refuseRun(decided, { reason: 'not today' }, { config: s.deps({}, 'carol').config }),
    ]);
    assert.ok(consecutive(await seqsOf(decided)), 'one sequence of events, none written twice');
    assert.equal(refused.status, 'fulfilled', 'a refusal lands whether or not an approval came first');
    const entries = (await loadRun(s.stateDir, decided)).entries;
    if (approved.status === 'fulfilled') {
      const seqOf = (type: string) => entries.findLast((e) => e.type === type)?.seq ?? 0;
      assert.ok(seqOf('approval.granted') < seqOf('run.ended'), 'the approval, then the refusal on top of it');
    } else {
      assert.equal((approved.reason as { code?: string }).code, 'SHIP_ERR_VALIDATION', 'an approval after the refusal is told the run ended');
    }

    // Approved, then the requester resumes while a third operator refuses: one or the other, never both.
    const raced = runIdOf(await runProcedure(tablesHigh, { prefix: s.prefix }, { yes: true }, s.deps()));
    await approveRun(raced, { config: s.deps({}, 'bob').config });
    const [resumed, vetoed] = await Promise.allSettled([
      resumeRun(raced, fixtureProcedures, { yes: true }, s.deps()),
      refuseRun(raced, { reason: 'veto' }, { config: s.deps({}, 'carol').config }),
    ]);
    assert.equal(resumed.status, 'fulfilled');
    const ran = resumed.status === 'fulfilled' && resumed.value.exitCode === 0;
    assert.equal(ran, vetoed.status === 'rejected', 'the run went ahead exactly when the refusal did not land');
    assert.equal((await tables(s.prefix)).length, ran ? 3 : 0);
    assert.ok(consecutive(await seqsOf(raced)));
  });

  test('appending to a journal someone else wrote to since it was read is refused and writes nothing; a claim left by a dead process is taken over', async () => {
    const s = await setup();
    const runId = runIdOf(await runProcedure(tablesHigh, { prefix: s.prefix }, { yes: true }, s.deps()));
    const stale = await loadRun(s.stateDir, runId);
    await approveRun(runId, { config: s.deps({}, 'bob').config });
    const before = await readFile(journalPath(s.stateDir, runId), 'utf8');
    const lastRead = stale.entries.at(-1)?.seq ?? 0;
    assert.throws(() => JournalWriter.append(s.stateDir, runId, lastRead, () => new Date()), { code: 'SHIP_ERR_RUN_CHANGED' });
    assert.equal(await readFile(journalPath(s.stateDir, runId), 'utf8'), before);

    const claim = `${journalPath(s.stateDir, runId)}.claim`;
    await writeFile(claim, '');
    const longAgo = new Date(Date.now() - 60_000);
    await utimes(claim, longAgo, longAgo);
    const writer = JournalWriter.append(s.stateDir, runId, lastRead + 1, () => new Date());
    writer.write({ type: 'note', message: 'written after taking over a stale claim' });
    writer.close();
    assert.equal((await readdir(path.dirname(claim))).filter((name) => name.endsWith('.claim')).length, 0, 'no claim left behind');
  });

  test('--approved-by is refused unless policy allows it, and never for oneself', async () => {
    const s = await setup();
    const off = await runProcedure(tablesHigh, { prefix: s.prefix }, { yes: true, approvedBy: 'bob' }, s.deps());
    assert.equal(off.exitCode, 2);
    assert.equal(off.error?.code, 'SHIP_ERR_FORBIDDEN');
    const policy = { approvalTtlMs: 60_000, allowInlineApproval: true };
    const self = await runProcedure(tablesHigh, { prefix: s.prefix }, { yes: true, approvedBy: 'alice' }, s.deps({ policy }));
    assert.equal(self.error?.code, 'SHIP_ERR_SELF_APPROVAL');
    const inline = await runProcedure(tablesHigh, { prefix: s.prefix }, { yes: true, approvedBy: 'bob' }, s.deps({ policy }));
    assert.equal(inline.state, 'succeeded');
    assert.equal(inline.approval?.how, 'inline');
  });

  test('a failed high-risk run pages the on-call; a medium one only announces', async () => {
    const s = await setup();
    const policy = { approvalTtlMs: 60_000, allowInlineApproval: true };
    await runProcedure(tablesHigh, { prefix: s.prefix, failAt: 'create-b' }, { yes: true, approvedBy: 'bob' }, s.deps({ policy }));
    const failed = s.alerts.find((alert) => alert.event === 'procedure.failed');
    assert.equal(failed?.page, 'trigger');
    assert.equal(failed?.severity, 'error');
    assert.ok(s.alerts.some((alert) => alert.event === 'procedure.started'));

    s.alerts.length = 0;
    await runProcedure(tablesMedium, { prefix: `${s.prefix}m`, failAt: 'create-b' }, { yes: true }, s.deps());
    assert.deepEqual(
      s.alerts.map((alert) => [alert.event, alert.page]),
      [
        ['procedure.started', undefined],
        ['procedure.failed', undefined],
      ],
    );
  });

  test('an alert sink that throws never changes how a run ends', async () => {
    const s = await setup();
    const report = await runProcedure(
      tablesMedium,
      { prefix: s.prefix },
      { yes: true },
      s.deps({ alerts: { send: () => Promise.reject(new Error('webhook down')) } }),
    );
    assert.equal(report.state, 'succeeded');
  });
});

describe('locks', () => {
  test('a second run on the same resource fails with SHIP_ERR_LOCKED naming the holder, and --wait queues behind it', async () => {
    const s = await setup();
    const marker = path.join(s.stateDir, 'go');
    const first = runProcedure(tablesLow, { prefix: s.prefix, waitFor: marker }, {}, s.deps());
    const holder = await waitForEvent(s.stateDir, 'step.started:create-c');

    const second = await runProcedure(tablesMedium, { prefix: s.prefix }, { yes: true }, s.deps({}, 'bob'));
    assert.equal(second.exitCode, 3);
    assert.equal(second.error?.code, 'SHIP_ERR_LOCKED');
    assert.match(second.error?.message ?? '', new RegExp(`locked by run ${holder} \\(operator alice, pid ${process.pid} on ${hostname()}, since 20`));

    const queued = runProcedure(tablesLow, { prefix: s.prefix }, { wait: true }, s.deps({}, 'bob'));
    await writeFile(marker, 'go');
    assert.equal((await first).state, 'succeeded');
    const afterWait = await queued;
    // It got the lock once the first run finished; then its own prerequisite saw the tables.
    assert.equal(afterWait.error?.code, 'SHIP_ERR_PREREQUISITE_FAILED');
  });

  test('a PostgreSQL advisory lock held elsewhere (another host) blocks the run and names that run', async () => {
    const s = await setup();
    const other = new pg.Client({ connectionString: database.url, application_name: 'shipshape-run r-20990101-000000-abcd carol' });
    await other.connect();
    try {
      await other.query('SELECT pg_advisory_lock($1::bigint)', [advisoryKey(`fixture:${s.prefix}`).toString()]);
      const report = await runProcedure(tablesLow, { prefix: s.prefix }, {}, s.deps());
      assert.equal(report.error?.code, 'SHIP_ERR_LOCKED');
      assert.match(report.error?.message ?? '', /run r-20990101-000000-abcd \(operator carol/);
      assert.deepEqual(await readdir(path.join(s.stateDir, 'locks')), [], 'the lock file taken first was given back');
    } finally {
      await other.end();
    }
  });

  test('a lock file left by a dead process is stale and taken over', async () => {
    const s = await setup();
    const dead = spawn(process.execPath, ['-e', '0']);
    const deadPid = await new Promise<number>((resolve) => dead.on('exit', () => resolve(dead.pid ?? 0)));
    const file = lockFilePath(s.stateDir, `fixture:${s.prefix}`);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(
      file,
      JSON.stringify({
        resource: `fixture:${s.prefix}`,
        runId: 'r-20000101-000000-dead',
        operator: 'zed',
        pid: deadPid,
        host: hostname(),
        since: '2000-01-01T00:00:00.000Z',
      }),
    );
    const report = await runProcedure(tablesLow, { prefix: s.prefix }, {}, s.deps());
    assert.equal(report.state, 'succeeded');
  });
});

describe('journal', () => {
  test('keeps secrets out of the journal file and its database mirror', async () => {
    const s = await setup();
    const report = await runProcedure(tablesLow, { prefix: s.prefix, apiToken: 'tok-param-secret-123', leak: true }, {}, s.deps());
    assert.equal(report.state, 'succeeded');
    const runId = runIdOf(report);
    const text = await readFile(journalPath(s.stateDir, runId), 'utf8');
    const { rows } = await pool.query<{ data: string }>("SELECT string_agg(data::text, E'\\n') AS data FROM shipshape.run_events WHERE run_id = $1::text", [
      runId,
    ]);
    const mirrored = rows[0]?.data ?? '';
    assert.match(mirrored, /run\.created/);
    for (const secret of ['tok-param-secret-123', 'hunter2-step-output', 's3cret-in-url', 'note-token-value', ADMIN_TOKEN]) {
      assert.ok(!text.includes(secret), `journal contains ${secret}`);
      assert.ok(!mirrored.includes(secret), `mirror contains ${secret}`);
      assert.ok(!JSON.stringify(report).includes(secret), `report contains ${secret}`);
    }
    assert.match(text, /\[redacted\]/);
    assert.deepEqual((await loadRun(s.stateDir, runId)).created.redactedParams, ['apiToken']);
  });

  test('records every phase of a run as fsynced JSON lines, mirrored into shipshape.runs', async () => {
    const s = await setup();
    const report = await runProcedure(tablesMedium, { prefix: s.prefix }, { yes: true }, s.deps());
    const runId = runIdOf(report);
    assert.match(runId, /^r-\d{8}-\d{6}-[0-9a-f]{4}$/);
    const types = await journalTypes(s.stateDir, runId);
    for (const type of [
      'run.created',
      'attempt.started',
      'lock.acquired',
      'gate',
      'prerequisite',
      'step.started:create-a',
      'step.done:create-c',
      'verification',
      'run.ended',
    ]) {
      assert.ok(types.includes(type), `journal lacks ${type}: ${types.join(', ')}`);
    }
    const { rows } = await pool.query<{ state: string; exit_code: number; procedure: string }>(
      'SELECT state, exit_code, procedure FROM shipshape.runs WHERE id = $1::text',
      [runId],
    );
    assert.deepEqual(rows, [{ state: 'succeeded', exit_code: 0, procedure: 'fixture.tables' }]);
    assert.deepEqual(await readdir(path.join(s.stateDir, 'locks')), []);
  });

  test('bad input is refused with exit 2 naming the field', async () => {
    const s = await setup();
    const report = await runProcedure(tablesMedium, { prefix: 'Bad Prefix', failAt: 'nowhere' }, { yes: true, fieldLabel: (field) => `--${field}` }, s.deps());
    assert.equal(report.exitCode, 2);
    assert.equal(report.error?.code, 'SHIP_ERR_VALIDATION');
    assert.match(report.error?.message ?? '', /--prefix: must be lowercase/);
    assert.match(report.error?.message ?? '', /--failAt/);
  });
});
