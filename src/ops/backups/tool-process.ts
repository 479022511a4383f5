/**
 * Running pg_dump and pg_restore as child processes.
 *
 * The one trap: a tool's stdout can reach its end before the tool reports its exit code,
 * and a dump that stopped half-way still ends cleanly on the pipe. `exitCheckedOutput`
 * therefore holds back the end of the stream until the exit code is known and turns a
 * non-zero exit into a stream error — so a consumer such as an upload fails (and cleans up)
 * instead of storing a truncated dump as if it were whole.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Transform, type Readable, type Writable } from 'node:stream';
import { ShipError } from '../../errors.ts';

export interface ToolExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ToolProcess {
  readonly child: ChildProcess;
  /** The tool's name for messages, e.g. "pg_dump". */
  readonly name: string;
  /** Resolves when the process has exited and its pipes closed; rejects when it could not start. */
  readonly exited: Promise<ToolExit>;
  /** The last lines the tool wrote to stderr. */
  stderrTail(): string;
  /** Stops the tool (SIGTERM); harmless when it already exited. */
  stop(): void;
}

export interface SpawnToolOptions {
  readonly env: NodeJS.ProcessEnv;
  /** What the tool reads on stdin; default nothing. */
  readonly stdin?: 'pipe' | 'ignore';
  /** What happens to its stdout; default a pipe to read. */
  readonly stdout?: 'pipe' | 'ignore';
  /**
   * Have the tool write its stdout in blocks of this many bytes where coreutils' `stdbuf` is
   * installed (see `outputBlocks`); elsewhere the tool runs as it is.
   */
  readonly stdoutBlockBytes?: number;
  readonly signal?: AbortSignal | undefined;
}

const STDERR_TAIL_BYTES = 4_096;

export function spawnTool(command: string, args: readonly string[], options: SpawnToolOptions): ToolProcess {
  const name = command.split('/').at(-1) ?? command;
  const run = options.stdoutBlockBytes === undefined ? { command, args } : outputBlocks(command, args, options.stdoutBlockBytes, options.env);
  const child = spawn(run.command, [...run.args], {
    env: options.env,
    stdio: [options.stdin ?? 'ignore', options.stdout ?? 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES);
  });
  const exited = new Promise<ToolExit>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') {
        reject(
          new ShipError(
            'SHIP_ERR_TOOL_MISSING',
            `${name} was not found (${command}). Install the PostgreSQL client tools, or set PG_BIN_DIR to the folder that holds them.`,
          ),
        );
      } else reject(error);
    });
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  // A rejection nobody awaited yet must not crash the process; callers await `exited`.
  exited.catch(() => undefined);
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  const onAbort = () => stop();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  void exited.finally(() => options.signal?.removeEventListener('abort', onAbort)).catch(() => undefined);
  return { child, name, exited, stderrTail: () => stderr.trim(), stop };
}

/**
 * A pipe's reader gets what the writer wrote, a write at a time, and C programs write a pipe in
 * blocks of 4 KiB (stdio's buffer for it); pg_dump's custom archive comes as 4 KiB zlib blocks
 * besides. For a 244 MB dump that was ~43,000 chunks, each a trip through Node's stream
 * machinery, the hash and the store. `stdbuf -o N` (GNU coreutils) gives the tool's stdout a
 * buffer of N bytes, so it writes far fewer, larger blocks (~5,000 chunks of ~48 KiB): `db backup`
 * of a 1 GB database used about 0.4 s less CPU beside pg_dump (docs/backups.md). stdbuf execs
 * the tool, so the pid and exit status are the tool's own; where stdbuf is not installed
 * (macOS, Alpine's busybox) the tool runs unwrapped. Only stdout is touched: stderr stays as the
 * tool sets it.
 */
function outputBlocks(command: string, args: readonly string[], bytes: number, env: NodeJS.ProcessEnv): { command: string; args: readonly string[] } {
  const stdbuf = stdbufPath(env.PATH ?? '');
  return stdbuf === undefined ? { command, args } : { command: stdbuf, args: ['-o', String(bytes), command, ...args] };
}

const stdbufByPath = new Map<string, string | undefined>();

/** Where `stdbuf` is on PATH, if anywhere (looked up once per PATH). */
function stdbufPath(searchPath: string): string | undefined {
  if (!stdbufByPath.has(searchPath)) {
    const found = searchPath
      .split(delimiter)
      .filter((folder) => folder !== '')
      .map((folder) => join(folder, 'stdbuf'))
      .find((candidate) => {
        try {
          accessSync(candidate, constants.X_OK);
          return true;
        } catch {
          return false;
        }
      });
    stdbufByPath.set(searchPath, found);
  }
  return stdbufByPath.get(searchPath);
}

/** The error for a tool that exited unsuccessfully, with what it said. */
export function toolFailure(tool: ToolProcess, exit: ToolExit): ShipError {
  const how = exit.signal !== null ? `was stopped by ${exit.signal}` : `exited with code ${exit.code}`;
  const said = tool.stderrTail();
  return new ShipError('SHIP_ERR_STEP_FAILED', `${tool.name} ${how}${said === '' ? '' : `: ${lastLines(said, 6)}`}`, {
    details: { tool: tool.name, exitCode: exit.code, signal: exit.signal },
  });
}

/** Waits for the tool and throws toolFailure unless it exited with 0. */
export async function expectSuccess(tool: ToolProcess): Promise<void> {
  const exit = await tool.exited;
  if (exit.code !== 0) throw toolFailure(tool, exit);
}

/**
 * The tool's stdout, ending only once the tool exited with 0 and erroring otherwise. If the
 * consumer stops reading (destroys the stream), the tool is stopped.
 */
export function exitCheckedOutput(tool: ToolProcess): Readable {
  const stdout = tool.child.stdout;
  if (stdout === null) throw new ShipError('SHIP_ERR_INTERNAL', `${tool.name} was started without a stdout pipe.`);
  const output = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      callback(null, chunk);
    },
    flush(callback) {
      tool.exited.then(
        (exit) => callback(exit.code === 0 ? null : toolFailure(tool, exit)),
        (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
      );
    },
  });
  stdout.on('error', (error) => output.destroy(error));
  stdout.pipe(output);
  output.on('close', () => {
    if (!output.writableFinished) tool.stop();
  });
  return output;
}

/** Runs a tool to completion and returns its stdout; throws toolFailure on a non-zero exit. */
export async function runTool(command: string, args: readonly string[], options: Omit<SpawnToolOptions, 'stdin' | 'stdout'>): Promise<string> {
  const tool = spawnTool(command, args, options);
  let stdout = '';
  tool.child.stdout?.setEncoding('utf8');
  tool.child.stdout?.on('data', (chunk: string) => (stdout += chunk));
  await expectSuccess(tool);
  return stdout;
}

function lastLines(text: string, count: number): string {
  return text.split('\n').slice(-count).join(' | ');
}

/**
 * Writes to a tool's stdin with backpressure, and quietly stops once the tool closed its end
 * (EPIPE) — pg_restore --list exits as soon as it has the table of contents.
 */
export class ToolFeed {
  #open = true;
  readonly #stdin: Writable;

  constructor(tool: ToolProcess) {
    const stdin = tool.child.stdin;
    if (stdin === null) throw new ShipError('SHIP_ERR_INTERNAL', `${tool.name} was started without a stdin pipe.`);
    this.#stdin = stdin;
    stdin.on('error', () => (this.#open = false));
    stdin.on('close', () => (this.#open = false));
  }

  async write(chunk: Buffer): Promise<void> {
    if (!this.#open || this.#stdin.write(chunk)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.#stdin.off('drain', done);
        this.#stdin.off('close', done);
        this.#stdin.off('error', done);
        resolve();
      };
      this.#stdin.on('drain', done);
      this.#stdin.on('close', done);
      this.#stdin.on('error', done);
    });
  }

  end(): void {
    if (this.#open) this.#stdin.end();
  }
}
