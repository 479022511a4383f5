/**
 * `shipshape approve <run-id>`: a second operator approves a high or critical run.
 * `shipshape refuse <run-id> --reason "…"`: any operator refuses one (the requester withdraws it).
 */
import type { Command } from 'commander';
import { approveRun, refuseRun } from '../../ops/engine/index.ts';
import { presentApproval, presentRefusal } from '../../ops/present/present.ts';
import { cliContext } from '../context.ts';
import { colourFor, jsonErrors } from './procedures.ts';

export function registerApprove(program: Command): void {
  program
    .command('approve <run-id>')
    .description('approve a high/critical run as a second operator (you must not be the one who requested it)')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (runId: string, flags: { json: boolean }) => {
      await jsonErrors(flags.json, async () => {
        const context = cliContext();
        const result = await approveRun(runId, { config: context.config });
        process.stdout.write(presentApproval(result, { json: flags.json, color: colourFor(process.stdout) }));
      });
    });

  program
    .command('refuse <run-id>')
    .description('refuse a run awaiting approval: it ends failed, nothing ran (refusing your own run withdraws it)')
    .requiredOption('--reason <text>', 'why: recorded in the journal and shown to the requester')
    .option('--json', 'print one JSON document on stdout', false)
    .action(async (runId: string, flags: { json: boolean; reason: string }) => {
      await jsonErrors(flags.json, async () => {
        const context = cliContext();
        const result = await refuseRun(runId, { reason: flags.reason }, { config: context.config });
        process.stdout.write(presentRefusal(result, { json: flags.json, color: colourFor(process.stdout) }));
      });
    });
}
