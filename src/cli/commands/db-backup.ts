/**
 * `shipshape db backup` without the rest of the program: a command tree holding only this
 * procedure's command (the same one the whole tree registers), so the process loads the
 * backup's own code and not every other command's — about 20 MB less resident memory for a
 * command whose peak memory is a goal (bench/backup.ts). main.ts picks it for `db backup`.
 */
import type { Command } from 'commander';
import { dbBackupEntry } from '../../ops/procedures/db-backup.ts';
import { baseProgram } from '../light-program.ts';
import { registerProcedureCommand } from './procedures.ts';

export function dbBackupProgram(): Command {
  const program = baseProgram();
  registerProcedureCommand(program, dbBackupEntry);
  return program;
}
