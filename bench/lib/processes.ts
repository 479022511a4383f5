/**
 * The processes a benchmark runs: Shipshape's real `serve`, the HTTP-ceiling server and
 * the load generator each get their own Node process, so none of them steals the event
 * loop of another. They run on the same Node as the harness, which runs TypeScript natively.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ShipError } from '../../src/errors.ts';
import { cliEntry, projectRoot } from './paths.ts';

export interface ChildServer {
  readonly url: string;
  /** The server's process id (its /proc entry is where bench/startup.ts reads the resident set). */
  readonly pid: number | undefined;
  /** The command line, for RESULTS.md. */
  readonly command: string;
  /** Set once the process has exited (on its own, or because `stop` was called). */
  exited(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** The last lines it wrote to stdout and stderr. */
  output(): string;
  /** Throws, with the server's own last output, if it is no longer running. */
  assertRunning(): void;
  stop(): Promise<void>;
}

/** Keeps the tail of a child's output and its exit status, from spawn on. */
export function watchChild(child: ChildProcess, label: string): Pick<ChildServer, 'exited' | 'output' | 'assertRunning'> {
  let output = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-16_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  child.once('exit', (code, signal) => (exit = { code, signal }));
  return {
    exited: () => exit,
    output: () => output,
    assertRunning: () => {
      if (exit) {
        throw new ShipError(
          'SHIP_ERR_STEP_FAILED',
          `${label} stopped during the benchmark (exit code ${exit.code}, signal ${exit.signal}). Its last output:\n${output.slice(-4_000)}`,
        );
      }
    },
  };
}

/** Runs a TypeScript entry point on this Node (its type stripping), as `npm run` scripts do. */
export function spawnTs(entry: string, args: readonly string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [entry, ...args], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * `shipshape serve` against the benchmark database. LOG_LEVEL=warn: at `info` Fastify
 * writes two log lines per request, and the benchmark would measure the log sink.
 */
/** `checkout`: another checkout of Shipshape to run instead of this one (to compare two versions in one run). */
export async function startShipshape(databaseUrl: string, extraEnv: Record<string, string> = {}, checkout?: string): Promise<ChildServer> {
  const port = await freePort();
  const stateDir = await mkdtemp(path.join(tmpdir(), 'shipshape-bench-state-'));
  const env = { DATABASE_URL: databaseUrl, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', STATE_DIR: stateDir, ...extraEnv };
  const child = spawnTs(checkout === undefined ? cliEntry : path.join(checkout, 'bin/shipshape.js'), ['serve'], env);
  const watched = watchChild(child, 'shipshape serve');
  const url = `http://127.0.0.1:${port}`;
  const shownEnv = Object.entries(env)
    .filter(([name]) => name !== 'STATE_DIR')
    .map(([name, value]) => `${name}=${name === 'DATABASE_URL' ? '<bench database>' : /TOKEN|SECRET|PASSWORD|KEY/.test(name) ? '<redacted>' : value}`)
    .join(' ');
  try {
    await waitUntilAnswering(child, `${url}/health`, 'shipshape serve');
  } catch (error) {
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    pid: child.pid,
    command: `${shownEnv} npx shipshape serve${checkout === undefined ? '' : ` (in ${checkout})`}`,
    ...watched,
    stop: async () => {
      await stopChild(child);
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** Polls until `url` answers 200, failing with the child's own output if it exits first. */
export async function waitUntilAnswering(child: ChildProcess, url: string, label: string, timeoutMs = 90_000): Promise<void> {
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      throw new ShipError('SHIP_ERR_PREREQUISITE_FAILED', `${label} exited with code ${exited} before answering ${url}:\n${output}`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new ShipError('SHIP_ERR_PREREQUISITE_FAILED', `${label} did not answer ${url} within ${timeoutMs / 1000} s:\n${output}`);
}

/** SIGTERM, then SIGKILL if it has not gone within 10 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export interface MeasuredRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
  /** Peak resident set of the process itself (VmHWM), not of its children; 0 where /proc is missing. */
  readonly peakRssBytes: number;
}

/**
 * Runs a command to completion, timing it and sampling its peak RSS from /proc every 20 ms
 * (VmHWM is the kernel's own high-water mark, so sampling only has to catch it before exit).
 */
export function runMeasured(command: string, args: readonly string[], env: Record<string, string>): Promise<MeasuredRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, {
      cwd: projectRoot,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let peakRssBytes = 0;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-20_000)));
    const sample = () => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const kib = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
        peakRssBytes = Math.max(peakRssBytes, kib * 1024);
      } catch {
        // gone already, or no /proc
      }
    };
    const timer = setInterval(sample, 20);
    child.on('error', (error) => {
      clearInterval(timer);
      reject(error);
    });
    child.on('exit', () => sample());
    child.on('close', (code) => {
      clearInterval(timer);
      resolve({ code, stdout, stderr, seconds: (performance.now() - started) / 1000, peakRssBytes });
    });
  });
}
