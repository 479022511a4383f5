/**
 * `shipshape runs` (list), `runs show <id>`, `runs resume <id>`, `runs rollback <id>`.
 */
import type { Command } from 'commander';
import type { ProcedureEntry } from '../../ops/engine/index.ts';
import { listRuns, loadRun } from '../../ops/engine/runs.ts';
import { presentRunJournal, presentRunList } from '../../ops/present/present.ts';
import { cliContext, localContext } from '../context.ts';
import { colourFor, jsonErrors } from '../output.ts';

/**
 * Reading runs needs only the journals; resuming or rolling one back needs the engine and
 * every procedure's code, loaded then (`shipshape runs` starts in a fraction of the time).
 */
const runner = async () => ({ ...(await import('../../ops/engine/index.ts')), ...(await import('./procedures.ts')) });

interface Flags {
  json?: boolean;
  yes?: boolean;
  yesIrreversible?: boolean;
  wait?: boolean;
  waitForApproval?: boolean;
  limit?: number;
}

const parseLimit = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error('must be a positive whole number');
  return n;
};

export function registerRuns(program: Command, entries: readonly ProcedureEntry[] | (() => Promise<readonly ProcedureEntry[]>)): void {
  const procedures = async () => (typeof entries === 'function' ? await entries() : entries).map((entry) => entry.procedure);
  const runs = program
    .command('runs')
    .description('procedure runs: running, interrupted, awaiting-approval, succeeded, unverified, failed, rolled-back, needs-attention');

  // The listing is the default subcommand rather than options on `runs` itself, so that
  // `runs show <id> --json` reaches `show` (commander hands a parent any option it knows).
  runs
    .command('list', { isDefault: true })
    .description('list runs, newest first (the default for `shipshape runs`)')
    .option('--json', 'print one JSON document on stdout', false)
    .option('--limit <n>', 'show only the newest n runs', parseLimit)
    .action(async (flags: Flags) => {
      await jsonErrors(flags.json === true, async () => {
        const { stateDir } = localContext();
        const records = await listRuns(stateDir, flags.limit);
        process.stdout.write(presentRunList(records, { json: flags.json === true, color: colourFor(process.stdout) }));
      });
    });

  runs
    .command('show <run-id>')
    .description("a run's journal: every event, step output and error")
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (runId: string, flags: Flags) => {
      await jsonErrors(flags.json === true, async () => {
        const { stateDir } = localContext();
        const record = await loadRun(stateDir, runId);
        process.stdout.write(presentRunJournal(record, { json: flags.json === true, color: colourFor(process.stdout) }));
      });
    });

  runs
    .command('resume <run-id>')
    .description('continue an interrupted run after its last completed step, or an approved run')
    .option('--json', 'print one JSON document (the run report) on stdout', false)
    .option('--yes', 'confirm without a prompt', false)
    .option('--yes-irreversible', 'confirm the remaining steps that cannot be undone', false)
    .option('--wait', 'queue behind a run holding the same lock instead of failing', false)
    .option('--wait-for-approval', 'a run awaiting approval: wait here until another operator approves (then resume) or refuses (exit 3)', false)
    .action(async (runId: string, flags: Flags) => {
      await jsonErrors(flags.json === true, async () => {
        const context = cliContext();
        const { resumeRun, terminalEngineDeps, waitForApproval, withInterrupts, writeReport } = await runner();
        const known = await procedures();
        if (flags.waitForApproval === true && (await loadRun(context.config.stateDir, runId)).state === 'awaiting-approval') {
          await waitForApproval(context, runId);
        }
        const report = await withInterrupts(async (signal) =>
          resumeRun(runId, known, { yes: flags.yes, yesIrreversible: flags.yesIrreversible, wait: flags.wait }, await terminalEngineDeps(context, signal)),
        );
        writeReport(report, flags.json === true);
      });
    });

  runs
    .command('rollback <run-id>')
    .description("undo an interrupted run's completed steps in reverse order (or finish a rollback that needs attention)")
    .option('--json', 'print one JSON document (the run report) on stdout', false)
    .option('--yes', 'confirm without a prompt', false)
    .option('--wait', 'queue behind a run holding the same lock instead of failing', false)
    .action(async (runId: string, flags: Flags) => {
      await jsonErrors(flags.json === true, async () => {
        const context = cliContext();
        const { rollbackRun, terminalEngineDeps, withInterrupts, writeReport } = await runner();
        const known = await procedures();
        const report = await withInterrupts(async (signal) =>
          rollbackRun(runId, known, { yes: flags.yes, wait: flags.wait }, await terminalEngineDeps(context, signal)),
        );
        writeReport(report, flags.json === true);
      });
    });
}
