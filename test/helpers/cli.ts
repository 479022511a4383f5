/**
 * Runs the real `shipshape` CLI (or a test's own CLI) in a child process, as an operator would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUSY_MACHINE_ENV, HANG_GUARD_MS } from './patience.ts';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The operator's entry point: `npx shipshape` runs it. */
const MAIN = path.join(PROJECT_ROOT, 'bin/shipshape.js');

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunningCli {
  readonly child: ChildProcess;
  readonly done: Promise<CliResult>;
}

export interface CliOptions {
  /** The TypeScript entry point to run; the real CLI by default. */
  readonly script?: string;
  readonly cwd?: string;
}

/** Environment for a child: the parent's PATH and HOME, plus what the test sets; nothing else leaks in. */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ...BUSY_MACHINE_ENV, ...env };
}

/**
 * Starts a CLI in a child process — directly under node, not through npx, so `child.pid` is
 * the pid a run's journal records and a test can SIGKILL.
 */
export function spawnCli(args: string[], env: Record<string, string> = {}, options: CliOptions = {}): RunningCli {
  const child = spawn(process.execPath, [options.script ?? MAIN, ...args], {
    cwd: options.cwd ?? PROJECT_ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), HANG_GUARD_MS);
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, done };
}

/** Runs a CLI to the end; see `spawnCli`. */
export function runCli(args: string[], env: Record<string, string> = {}, options: CliOptions = {}): Promise<CliResult> {
  return spawnCli(args, env, options).done;
}

/** Starts `shipshape serve` and resolves once it logs that it is listening. */
export function startServeProcess(
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ child: ChildProcess; url: string; output: () => string; stop(signal?: NodeJS.Signals): Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, 'serve', ...args], {
      cwd: PROJECT_ROOT,
      env: childEnv({ LOG_LEVEL: 'info', ...env }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const exited = new Promise<number | null>((done) => child.on('close', (code) => done(code)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not start:\n${output}`));
    }, HANG_GUARD_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve({
          child,
          url: match[1],
          output: () => output,
          stop: async (signal = 'SIGTERM') => {
            child.kill(signal);
            return exited;
          },
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before listening:\n${output}`));
    });
  });
}
