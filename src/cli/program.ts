/**
 * The whole `shipshape` command tree. Loading it loads every command's code, so `main`
 * builds it only for commands that have no lighter way in (see LIGHT_COMMANDS in main.ts).
 */
import type { Command } from 'commander';
import type { ProcedureEntry } from '../ops/engine/registry.ts';
import { procedures as registeredProcedures } from '../ops/procedures/index.ts';
import { baseProgram } from './light-program.ts';
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

export interface ProgramOptions {
  /** The procedures to expose; defaults to the registry (tests add their fixtures). */
  readonly procedures?: readonly ProcedureEntry[];
}

export function buildProgram(options: ProgramOptions = {}): Command {
  const procedures = options.procedures ?? registeredProcedures;
  const program = baseProgram();
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
