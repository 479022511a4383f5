/**
 * A check that could not be made is never a pass: the run report says "unverified: <why>",
 * the journal keeps it, and the run ends `unverified` with exit 5 — unless the check says why
 * that is safe. A step the operator did not ask for is shown as not asked, never as done.
 * (No database needed: the runner keeps to its lock files when DATABASE_URL does not answer.)
 */
import assert from 'node:assert/strict';
import { access, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import { z } from 'zod';
import type { Alert } from '../../src/adapters/alerts/index.ts';
import { loadConfig } from '../../src/config/index.ts';
import { ExitCode } from '../../src/errors.ts';
import { createLogger } from '../../src/log.ts';
import { defineProcedure, loadRun, rollbackRun, runProcedure, unverified, type Check } from '../../src/ops/engine/index.ts';
import { presentReport, presentRunJournal } from '../../src/ops/present/present.ts';
import { journalPath } from '../../src/ops/engine/journal.ts';
import { createStateDir } from '../helpers/postgres.ts';

const logger = createLogger('silent');
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups) await cleanup();
});

const params = z.object({ file: z.string(), extra: z.boolean().default(false) });
type Params = z.output<typeof params>;

const cannotLook: Check<Params> = {
  name: 'the API serves the file',
  run: async () => unverified('the API at http://127.0.0.1:1 did not answer (ECONNREFUSED)', 'curl http://127.0.0.1:1/file once the API is up'),
};

function procedure(options: { prerequisites?: Check<Params>[]; verification?: Check<Params>[] }) {
  return defineProcedure({
    id: 'fixture.unverified',
    command: 'fixture unverified',
    title: 'Fixture: write a file, check it where it cannot be checked',
    runbookSection: 'Test fixture',
    whenToUse: 'Only in tests.',
    risk: 'low',
    expectedDuration: 'a moment',
    issueType: 'infrastructure',
    alertChannels: ['#ops-test'],
    params,
    locks: () => ['fixture:unverified'],
    prerequisites: options.prerequisites ?? [],
    steps: [
      {
        id: 'write',
        title: 'Write the file',
        describe: (context) => [`write ${context.params.file}`],
        async run(context) {
          await writeFile(context.params.file, 'x');
          return { file: context.params.file };
        },
        async undo(_context, output) {
          const { rm } = await import('node:fs/promises');
          await rm(String(output.file), { force: true });
        },
      },
      {
        id: 'extra',
        title: 'Write a second file, only when asked',
        describe: (context) => [`write ${context.params.file}.extra`],
        notAsked: (context) => (context.params.extra ? undefined : '--extra'),
        async run(context) {
          await writeFile(`${context.params.file}.extra`, 'x');
        },
      },
    ],
    verification: options.verification ?? [],
  });
}

async function setup() {
  const state = await createStateDir();
  cleanups.push(state.cleanup);
  const config = loadConfig({
    DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
    STATE_DIR: state.path,
    SHIPSHAPE_OPERATOR: 'alice',
    DATABASE_CONNECT_TIMEOUT_MS: '2000',
  });
  const alerts: Alert[] = [];
  const deps = { config, logger, alerts: { send: async (alert: Alert) => void alerts.push(alert) } };
  return { dir: state.path, config, alerts, deps, file: path.join(state.path, 'out') };
}

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

test('a verification that could not be made prints "unverified: <why>" (never ✓), is journaled, keeps the change and exits 5', async () => {
  const { dir, alerts, deps, file } = await setup();
  const report = await runProcedure(procedure({ verification: [cannotLook] }), { file }, {}, deps);
  assert.equal(report.state, 'unverified');
  assert.equal(report.exitCode, ExitCode.unverified);
  assert.equal(report.exitCode, 5);
  assert.equal(report.error?.code, 'SHIP_ERR_UNVERIFIED');
  assert.match(report.error?.message ?? '', /could not be made.*ECONNREFUSED/);
  assert.match(report.next ?? '', /curl http:\/\/127\.0\.0\.1:1\/file/);
  assert.equal(await exists(file), true, 'an unverified run is not rolled back');

  const shown = presentReport(report, { json: false, color: false });
  assert.equal(shown.exitCode, 5);
  assert.match(shown.stdout, /\? verify the API serves the file: unverified: the API at http:\/\/127\.0\.0\.1:1 did not answer/);
  assert.doesNotMatch(shown.stdout, /✓ verify/);
  assert.match(shown.stdout, /· unverified/);

  const record = await loadRun(dir, report.runId ?? '');
  assert.equal(record.state, 'unverified');
  assert.deepEqual(
    record.verification.map((c) => [c.name, c.ok, c.unverified]),
    [['the API serves the file', false, true]],
  );
  const journal = presentRunJournal(record, { json: false, color: false });
  assert.match(journal, /\? verify the API serves the file: unverified: /);
  assert.match(journal, /ended: unverified \(exit 5\)/);
  assert.ok(
    alerts.some((alert) => alert.event === 'procedure.unverified' && alert.severity === 'warning'),
    'people hear of it',
  );
});

test('a prerequisite that could not be checked does not stop the run, and ends it unverified (exit 5)', async () => {
  const { deps, file } = await setup();
  const report = await runProcedure(procedure({ prerequisites: [cannotLook] }), { file }, {}, deps);
  assert.equal(report.state, 'unverified');
  assert.equal(report.exitCode, 5);
  assert.equal(await exists(file), true);
  const shown = presentReport(report, { json: false, color: false });
  assert.match(shown.stdout, /\? prerequisite the API serves the file: unverified: /);
  assert.doesNotMatch(shown.stdout, /✓ prerequisite/);
});

test('a check whose procedure documents why not checking is safe ends succeeded (exit 0) and still says unverified', async () => {
  const { deps, file } = await setup();
  const safeCheck: Check<Params> = { ...cannotLook, unverifiedIsSafe: 'the API reads the file when it starts' };
  const report = await runProcedure(procedure({ verification: [safeCheck] }), { file }, {}, deps);
  assert.equal(report.state, 'succeeded');
  assert.equal(report.exitCode, 0);
  const shown = presentReport(report, { json: false, color: false });
  assert.match(shown.stdout, /\? verify the API serves the file: unverified: .*\(safe: the API reads the file when it starts\)/);
});

test('a step that was not asked for is shown as "– <step>: not asked (<flag>)", journaled as skipped, never "✓ … (0 ms)"', async () => {
  const { dir, deps, file } = await setup();
  const report = await runProcedure(procedure({}), { file }, {}, deps);
  assert.equal(report.state, 'succeeded');
  assert.equal(report.exitCode, 0);
  const step = report.steps.find((s) => s.id === 'extra');
  assert.equal(step?.status, 'skipped');
  assert.equal(step?.notAsked, '--extra');
  const shown = presentReport(report, { json: false, color: false });
  assert.match(shown.stdout, /– extra: not asked \(--extra\)/);
  assert.doesNotMatch(shown.stdout, /✓ extra/);
  assert.equal(await exists(`${file}.extra`), false);
  const lines = (await readFile(journalPath(dir, report.runId ?? ''), 'utf8'))
    .trim()
    .split('\n')
    .map((line): unknown => JSON.parse(line));
  assert.ok(lines.some((entry) => typeof entry === 'object' && entry !== null && 'type' in entry && entry.type === 'step.skipped'));

  const asked = await runProcedure(procedure({}), { file, extra: true }, {}, deps);
  assert.equal(asked.steps.find((s) => s.id === 'extra')?.status, 'done');
  assert.equal(await exists(`${file}.extra`), true);
});

test('a step that could not make its own check (output `unverified`) is shown with ?, never ✓, and ends the run unverified', async () => {
  const { deps, file } = await setup();
  const base = procedure({});
  const checking = defineProcedure({
    ...base,
    steps: [
      ...base.steps,
      {
        id: 'look',
        title: 'Look at the API',
        describe: () => ['GET http://127.0.0.1:1/health'],
        async run() {
          return { unverified: 'the API at http://127.0.0.1:1 did not answer' };
        },
      },
    ],
  });
  const report = await runProcedure(checking, { file }, {}, deps);
  assert.equal(report.state, 'unverified');
  assert.equal(report.exitCode, 5);
  assert.equal(report.steps.find((s) => s.id === 'look')?.unverified, 'the API at http://127.0.0.1:1 did not answer');
  const shown = presentReport(report, { json: false, color: false }).stdout;
  assert.match(shown, /\? look\s+Look at the API\s+\(unverified: the API at http:\/\/127\.0\.0\.1:1 did not answer/);
  assert.doesNotMatch(shown, /✓ look/);
  assert.match(report.error?.message ?? '', /step look: the API/);
});

test('an unverified run that turns out not to have worked can be rolled back with `runs rollback`', async () => {
  const { deps, file } = await setup();
  const report = await runProcedure(procedure({ verification: [cannotLook] }), { file }, {}, deps);
  assert.equal(report.state, 'unverified');
  const rolled = await rollbackRun(report.runId ?? '', [procedure({ verification: [cannotLook] })], {}, deps);
  assert.equal(rolled.state, 'rolled-back');
  assert.equal(rolled.exitCode, 0);
  assert.equal(await exists(file), false);
});
