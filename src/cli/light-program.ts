/**
 * The empty `shipshape` program every command tree starts from; light enough for the
 * commands that start without the whole tree (main.ts).
 */
import { Command } from 'commander';
import { version } from '../version.ts';

export function baseProgram(): Command {
  return new Command('shipshape')
    .description('Shipshape: the task-list app backend and its operations runbook, as code')
    .version(version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
}
