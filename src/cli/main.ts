/**
 * The `shipshape` command: parse, dispatch, and map every failure to an exit code in
 * one place. Errors go to stderr as "error[CODE]: cause. what to do".
 */
import { Command, CommanderError } from 'commander';
import { ExitCode, isShipError } from '../errors.ts';
import { version } from '../version.ts';
import { registerDbMigrate } from './commands/db-migrate.ts';
import { registerServe } from './commands/serve.ts';

export function buildProgram(): Command {
  const program = new Command('shipshape')
    .description('Shipshape: the task-list app backend and its operations runbook, as code')
    .version(version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerServe(program);
  const db = program.command('db').description('database operations');
  registerDbMigrate(db);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  for (const command of allCommands(program)) command.exitOverride();
  try {
    await program.parseAsync(argv);
    return Number(process.exitCode ?? ExitCode.ok);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too, successfully.
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    if (isShipError(error)) {
      process.stderr.write(`error[${error.code}]: ${error.message}\n`);
      return error.exitCode;
    }
    process.stderr.write(`internal error — please report it with the output above: ${(error as Error).stack ?? String(error)}\n`);
    return ExitCode.needsHuman;
  }
}

function* allCommands(command: Command): Generator<Command> {
  yield command;
  for (const sub of command.commands) yield* allCommands(sub);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv);
}
