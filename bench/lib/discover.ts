/**
 * Finding the benchmarks: every `bench/<name>.ts` except `run.ts` exports `benchmark`.
 * Adding one is adding a file; nothing is registered by hand.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ShipError } from '../../src/errors.ts';
import { benchDir, projectRoot } from './paths.ts';
import type { Benchmark } from './types.ts';

const NOT_BENCHMARKS = new Set(['run.ts']);

export async function discoverBenchmarks(): Promise<Benchmark[]> {
  const files = (await readdir(benchDir)).filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts') && !NOT_BENCHMARKS.has(file));
  const found: Benchmark[] = [];
  for (const file of files) {
    const module: Record<string, unknown> = await import(pathToFileURL(path.join(benchDir, file)).href);
    const candidate = module.benchmark;
    if (!isBenchmark(candidate)) {
      throw new ShipError(
        'SHIP_ERR_INTERNAL',
        `bench/${file} does not export a \`benchmark\` with name, order, title, description and either run() or pending. See bench/README.md.`,
      );
    }
    if (candidate.name !== file.slice(0, -'.ts'.length)) {
      throw new ShipError(
        'SHIP_ERR_INTERNAL',
        `bench/${file} exports a benchmark named "${candidate.name}"; name it "${file.slice(0, -3)}" so --only finds it by its file.`,
      );
    }
    found.push(candidate);
  }
  return found.sort((a, b) => a.order - b.order || a.name.localeCompare(b.name));
}

function isBenchmark(value: unknown): value is Benchmark {
  if (typeof value !== 'object' || value === null) return false;
  const identity =
    'name' in value && typeof value.name === 'string' && 'order' in value && typeof value.order === 'number' && 'title' in value && 'description' in value;
  const runnable = 'run' in value && typeof value.run === 'function';
  const pending = 'pending' in value && typeof value.pending === 'object' && value.pending !== null;
  return identity && (runnable || pending);
}

/**
 * Which of a pending benchmark's `waitsFor` patterns now match a file (`*` matches within
 * one path segment), so the results can say that its subject has landed.
 */
export async function presentSubjects(patterns: readonly string[]): Promise<string[]> {
  const present: string[] = [];
  for (const pattern of patterns) {
    const directory = path.join(projectRoot, path.dirname(pattern));
    const name = path.basename(pattern);
    if (!name.includes('*')) {
      if (existsSync(path.join(projectRoot, pattern))) present.push(pattern);
      continue;
    }
    const matcher = new RegExp(
      `^${name
        .split('*')
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('[^/]*')}$`,
    );
    const entries = existsSync(directory) ? await readdir(directory) : [];
    present.push(...entries.filter((entry) => matcher.test(entry)).map((entry) => path.join(path.dirname(pattern), entry)));
  }
  return present;
}
