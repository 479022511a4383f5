/**
 * The `shipshape` command: parse, dispatch, and map every failure to an exit code in
 * one place. Errors go to stderr as "error[CODE]: cause. what to do".
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { ExitCode } from '../errors.ts';
import { version } from '../version.ts';
import type { ProgramOptions } from './program.ts';

export type { ProgramOptions };

/**
 * Commands that start without loading the whole program: each builds a program holding only
 * itself and loads the rest of its code when it runs. Anything else (including --help, which
 * lists every command) builds the whole tree.
 */
const LIGHT_COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  // The long-running processes: every command's code (and the runbook's) would stay in memory for their lifetime.
  serve: async () => {
    const [{ baseProgram }, { registerServe }] = await Promise.all([import('./light-program.ts'), import('./commands/serve.ts')]);
    const program = baseProgram();
    registerServe(program);
    return program;
  },
  worker: async () => {
    const [{ baseProgram }, { registerWorker }] = await Promise.all([import('./light-program.ts'), import('./commands/worker.ts')]);
    const program = baseProgram();
    registerWorker(program);
    return program;
  },
  runs: async () => {
    const [{ baseProgram }, { registerRuns }] = await Promise.all([import('./light-program.ts'), import('./commands/runs.ts')]);
    const program = baseProgram();
    registerRuns(program, async () => (await import('../ops/procedures/index.ts')).procedures);
    return program;
  },
  procedures: async () => {
    const [{ baseProgram }, { registerProcedureList }, { procedureCatalog }] = await Promise.all([
      import('./light-program.ts'),
      import('./commands/procedure-list.ts'),
      import('../ops/procedures/catalog.ts'),
    ]);
    const program = baseProgram();
    registerProcedureList(program, procedureCatalog);
    return program;
  },
  // Its peak memory is a goal: src/cli/commands/db-backup.ts.
  'db backup': async () => (await import('./commands/db-backup.ts')).dbBackupProgram(),
};

async function programFor(argv: string[], options: ProgramOptions): Promise<Command> {
  const light = options.procedures === undefined ? (LIGHT_COMMANDS[argv[2] ?? ''] ?? LIGHT_COMMANDS[argv.slice(2, 4).join(' ')]) : undefined;
  if (light && !argv.slice(3).some((arg) => arg === '--help' || arg === '-h')) return light();
  const { buildProgram } = await import('./program.ts');
  return buildProgram(options);
}

export async function main(argv: string[], options: ProgramOptions = {}): Promise<number> {
  // `shipshape --version` needs nothing but the version.
  if (argv.length === 3 && (argv[2] === '--version' || argv[2] === '-V')) {
    process.stdout.write(`${version}\n`);
    return ExitCode.ok;
  }
  const [program, exit] = await Promise.all([programFor(argv, options), import('./exit.ts')]);
  for (const command of allCommands(program)) command.exitOverride();
  try {
    await program.parseAsync(argv);
    return exit.exitCodeOfCompletedCommand();
  } catch (error) {
    const failure = exit.classifyFailure(error);
    if (failure) {
      if (failure.known) process.stderr.write(`error[${failure.known.code}]: ${failure.known.message}\n`);
      return failure.exitCode;
    }
    process.stderr.write(`${await describeInternalError(error)}\n`);
    return exit.INTERNAL_ERROR_EXIT_CODE;
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
