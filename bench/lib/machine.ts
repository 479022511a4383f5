/**
 * The machine the figures came from. These machines are noisy and small, so the load
 * average before and after a run is part of the result: a busy neighbour explains a
 * bad day better than any code change.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { projectRoot } from './paths.ts';

const run = promisify(execFile);

export interface MachineInfo {
  readonly cores: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  readonly postgres: string;
  readonly pgbench: string;
  readonly autocannon: string;
  readonly loadAverage: readonly number[];
}

export async function describeMachine(adminUrl: string, pgbenchPath: string | undefined): Promise<MachineInfo> {
  return {
    cores: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres: await postgresVersion(adminUrl),
    pgbench: pgbenchPath ? await toolVersion(pgbenchPath) : 'not found',
    autocannon: packageVersion('autocannon'),
    loadAverage: os.loadavg(),
  };
}

export function currentLoadAverage(): string {
  return os
    .loadavg()
    .map((value) => value.toFixed(2))
    .join(' / ');
}

async function postgresVersion(adminUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    return `PostgreSQL ${rows[0]?.server_version ?? 'unknown'}`;
  } finally {
    await client.end();
  }
}

async function toolVersion(binary: string): Promise<string> {
  const { stdout } = await run(binary, ['--version']);
  return stdout.trim();
}

function packageVersion(name: string): string {
  const manifest: unknown = JSON.parse(readFileSync(path.join(projectRoot, 'node_modules', name, 'package.json'), 'utf8'));
  const version = typeof manifest === 'object' && manifest !== null && 'version' in manifest ? manifest.version : undefined;
  return typeof version === 'string' ? `${name} ${version}` : `${name} (version unknown)`;
}
