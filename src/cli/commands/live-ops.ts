/**
 * The operator-facing live operations commands that are not procedures: `health`, `doctor`,
 * and the read-only `db` diagnostics. (Procedures — `db index`, `db kill`, `emergency …`,
 * `cdn purge` — come from the registry.)
 */
import type { Command } from 'commander';
import { registerDbDiagnostics } from './db-diagnostics.ts';
import { registerDoctor } from './doctor.ts';
import { registerHealth } from './health.ts';

export function registerLiveOps(program: Command): void {
  registerHealth(program);
  registerDoctor(program);
  const db = program.commands.find((command) => command.name() === 'db') ?? program.command('db').description('database operations');
  registerDbDiagnostics(db);
}
