/**
 * The `shipshape` command: parse, dispatch, and map every failure to an exit code in
 * one place. Errors go to stderr as "error[CODE]: cause. what to do".
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import type { ProcedureEntry } from '../ops/engine/registry.ts';
import { procedures as registeredProcedures } from '../ops/procedures/index.ts';
import { version } from '../version.ts';
import { registerApprove } from './commands/approve.ts';
import { registerAudit } from './commands/audit.ts';
import { registerDbBackups } from './commands/db-backups.ts';
import { registerDbMigrate } from './commands/db-migrate.ts';
import { registerLiveOps } from './commands/live-ops.ts';
import { registerNotify } from './commands/notify.ts';
import { registerProcedures } from './commands/procedures.ts';
import { registerRelease } from './commands/release.ts';
import { registerRuns } from './commands/runs.ts';
import { registerScheduling } from './commands/scheduling.ts';
import { registerServe } from './commands/serve.ts';
import { registerUpdate } from './commands/update.ts';
import { registerUserCommands } from './commands/user.ts';
import { classifyFailure, exitCodeOfCompletedCommand, INTERNAL_ERROR_EXIT_CODE } from './exit.ts';

export interface ProgramOptions {
  /** The procedures to expose; defaults to the registry (tests add their fixtures). */
  readonly procedures?: readonly ProcedureEntry[];
}

export function buildProgram(options: ProgramOptions = {}): Command {
  const procedures = options.procedures ?? registeredProcedures;
  const program = new Command('shipshape')
    .description('Shipshape: the task-list app backend and its operations runbook, as code')
    .version(version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerServe(program);
  const db = program.command('db').description('database operations');
  registerDbMigrate(db);
  registerDbBackups(db);
  registerLiveOps(program);
  // Before the procedures: `update rollback` (a procedure) joins this `update` command.
  registerUpdate(program);
  registerProcedures(program, procedures);
  registerRelease(program);
  registerRuns(program, procedures);
  registerApprove(program);
  registerUserCommands(program);
  registerAudit(program);
  registerNotify(program);
  registerScheduling(program);
  return program;
}

export async function main(argv: string[], options: ProgramOptions = {}): Promise<number> {
  const program = buildProgram(options);
  for (const command of allCommands(program)) command.exitOverride();
  try {
    await program.parseAsync(argv);
    return exitCodeOfCompletedCommand();
  } catch (error) {
    const failure = classifyFailure(error);
    if (failure) {
      if (failure.known) process.stderr.write(`error[${failure.known.code}]: ${failure.known.message}\n`);
      return failure.exitCode;
    }
    process.stderr.write(`${await describeInternalError(error)}\n`);
    return INTERNAL_ERROR_EXIT_CODE;
  }
}

/**
 * An error nobody foresaw is a bug. The operator gets one line saying so and where the details
 * are; the stack goes to a file under STATE_DIR (private, like everything there), not the screen.
 */
export async function describeInternalError(error: unknown): Promise<string> {
  const message = error instanceof Error ? error.message : String(error);
  const details = `${new Date().toISOString()} shipshape ${version} ${process.argv.slice(2).join(' ')}\n${error instanceof Error ? (error.stack ?? message) : message}\n`;
  try {
    const folder = path.resolve(process.env.STATE_DIR || './.shipshape', 'crashes');
    await mkdir(folder, { recursive: true });
    const file = path.join(folder, `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}.txt`);
    await writeFile(file, details);
    return `error[SHIP_ERR_INTERNAL]: ${message}. This is a bug in Shipshape, not something you did; the details are in ${file} — please report it with that file.`;
  } catch {
    return `error[SHIP_ERR_INTERNAL]: ${message}. This is a bug in Shipshape, not something you did — please report it with these details:\n${details}`;
  }
}

function* allCommands(command: Command): Generator<Command> {
  yield command;
  for (const sub of command.commands) yield* allCommands(sub);
}
