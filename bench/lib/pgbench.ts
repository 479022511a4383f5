/**
 * The database ceiling: PostgreSQL's own load generator running the statements Shipshape
 * sends, over the same protocol (node-postgres sends parameterised queries with the
 * extended protocol and unnamed statements, i.e. `-M extended`; parameterless ones with
 * the simple protocol). Latency percentiles come from pgbench's per-transaction log.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ShipError } from '../../src/errors.ts';
import { percentiles, type Percentiles } from './stats.ts';

const run = promisify(execFile);

export interface PgbenchScript {
  readonly name: string;
  /** The script file's text: `\set` lines and SQL statements ending in `;`. */
  readonly text: string;
  readonly protocol: 'simple' | 'extended';
}

export interface PgbenchRunOptions {
  readonly binary: string;
  readonly databaseUrl: string;
  readonly script: PgbenchScript;
  readonly clients: number;
  readonly threads: number;
  /** `-T`: run for this many whole seconds, or `-t`: this many transactions per client. */
  readonly length: { readonly seconds: number } | { readonly transactionsPerClient: number };
  /** `-D name=value` */
  readonly variables: Record<string, string>;
  /** Scratch directory for the script and the transaction logs. */
  readonly workDir: string;
}

export interface PgbenchResult {
  /** Transactions per second, excluding connection set-up (pgbench's own figure). */
  readonly tps: number;
  readonly transactions: number;
  readonly failed: number;
  readonly latency: Percentiles;
}

/** pgbench on PATH, else the newest one Debian's PostgreSQL packages installed. */
export async function findPgbench(): Promise<string | undefined> {
  try {
    const { stdout } = await run('sh', ['-c', 'command -v pgbench']);
    if (stdout.trim()) return stdout.trim();
  } catch {
    // not on PATH
  }
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = (await readdir(root)).filter((entry) => /^\d+$/.test(entry)).sort((a, b) => Number(b) - Number(a));
  return versions.map((version) => path.join(root, version, 'bin/pgbench')).find((candidate) => existsSync(candidate));
}

/** The command line as shown in RESULTS.md, with the database URL left out. */
export function describePgbench(options: Omit<PgbenchRunOptions, 'binary' | 'databaseUrl' | 'workDir'>): string {
  return ['pgbench', ...pgbenchArguments(options, `${options.script.name}.sql`), '<bench database>'].join(' ');
}

function pgbenchArguments(options: Omit<PgbenchRunOptions, 'binary' | 'databaseUrl' | 'workDir'>, scriptFile: string): string[] {
  const length = 'seconds' in options.length ? ['-T', String(options.length.seconds)] : ['-t', String(options.length.transactionsPerClient)];
  const variables = Object.entries(options.variables).flatMap(([name, value]) => ['-D', `${name}=${value}`]);
  return ['-n', '-M', options.script.protocol, '-c', String(options.clients), '-j', String(options.threads), ...length, ...variables, '-f', scriptFile];
}

export async function runPgbench(options: PgbenchRunOptions): Promise<PgbenchResult> {
  const scriptFile = path.join(options.workDir, `${options.script.name}.sql`);
  await writeFile(scriptFile, options.script.text);
  const logPrefix = path.join(options.workDir, `log-${options.script.name}`);
  const args = [...pgbenchArguments(options, scriptFile), '-l', `--log-prefix=${logPrefix}`, options.databaseUrl];
  let stdout: string;
  try {
    ({ stdout } = await run(options.binary, args, { maxBuffer: 16 * 1024 * 1024 }));
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new ShipError('SHIP_ERR_STEP_FAILED', `pgbench failed running ${options.script.name}: ${stderr.slice(-2_000) || (error as Error).message}`, {
      cause: error,
    });
  }
  const latency = await readTransactionLog(options.workDir, path.basename(logPrefix));
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1];
  const transactions = /number of transactions actually processed: (\d+)/.exec(stdout)?.[1];
  const failed = /number of failed transactions: (\d+)/.exec(stdout)?.[1];
  if (tps === undefined || transactions === undefined) {
    throw new ShipError(
      'SHIP_ERR_STEP_FAILED',
      `pgbench's output for ${options.script.name} did not contain tps and a transaction count:\n${stdout.slice(-2_000)}`,
    );
  }
  return { tps: Number(tps), transactions: Number(transactions), failed: Number(failed ?? 0), latency };
}

/** Lines are `client transaction latency_us script epoch_s epoch_us`; one file per thread. */
async function readTransactionLog(dir: string, prefix: string): Promise<Percentiles> {
  const files = (await readdir(dir)).filter((file) => file.startsWith(`${prefix}.`));
  const values: number[] = [];
  for (const file of files) {
    const text = await readFile(path.join(dir, file), 'utf8');
    for (const line of text.split('\n')) {
      const micros = Number(line.split(' ')[2]);
      if (line && Number.isFinite(micros)) values.push(micros / 1000);
    }
    await rm(path.join(dir, file));
  }
  return percentiles(Float64Array.from(values));
}
