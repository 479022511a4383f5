/**
 * Runs the release tools (git, npm, eas-cli, a CI check command) as child processes with
 * their own arguments — never through a shell, except a CI check command the operator
 * configured as one line — and keeps what they printed for messages.
 */
import { spawn } from 'node:child_process';
import { ShipError } from '../../errors.ts';

export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CommandOptions {
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal | undefined;
  /** Run `command` as one shell line (`sh -c`): only for the operator's RELEASE_CI_CHECK_COMMAND. */
  readonly shell?: boolean;
}

/** Runs to the end; resolves with the exit code whatever it is. Rejects only when it cannot start. */
export function runCommand(command: string, args: readonly string[], options: CommandOptions): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = options.shell
      ? spawn('sh', ['-c', command], { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal })
      : spawn(command, [...args], { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT')
        reject(
          new ShipError(
            'SHIP_ERR_TOOL_MISSING',
            `${command} was not found on PATH. Install it (or set the variable that names it), then run the command again.`,
          ),
        );
      else reject(error);
    });
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs and requires exit 0; the error names the command and its last words. */
export async function runChecked(command: string, args: readonly string[], options: CommandOptions): Promise<string> {
  const result = await runCommand(command, args, options);
  if (result.code !== 0) {
    const said = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' / ').slice(0, 500);
    throw new ShipError('SHIP_ERR_STEP_FAILED', `\`${[command, ...args].join(' ')}\` exited with ${result.code ?? 'a signal'}${said ? `: ${said}` : ''}.`);
  }
  return result.stdout;
}
