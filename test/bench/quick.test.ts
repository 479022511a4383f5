/**
 * CI's hook for the benchmarks: the quick mode must keep working, so the scripts never
 * rot. Figures are not checked (no timing assertions), only that every measurable
 * benchmark produced some, and that a quick run leaves bench/RESULTS.md alone.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { PROJECT_ROOT } from '../helpers/cli.ts';
import { HANG_GUARD_MS } from '../helpers/patience.ts';

const RESULTS = path.join(PROJECT_ROOT, 'bench/RESULTS.md');

function runQuickBench(jsonFile: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    // The same command as `npm run bench -- --quick`, without npm in between.
    const child = spawn(process.execPath, ['bench/run.ts', '--quick', '--json', jsonFile], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...(process.env.TEST_POSTGRES_URL ? { BENCH_POSTGRES_URL: process.env.TEST_POSTGRES_URL } : {}) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-20_000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), HANG_GUARD_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

interface BenchJson {
  quick: boolean;
  benchmarks: Array<{
    name: string;
    state: string;
    measurements?: number;
    sections?: Array<{ table?: { rows: string[][] } }>;
    goals?: Array<{ measure: string; baseline: string; goal: string; measured: string; met: boolean }>;
  }>;
}

test('npm run bench -- --quick completes, measures every measurable benchmark and leaves RESULTS.md untouched', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'shipshape-bench-test-'));
  try {
    const resultsBefore = existsSync(RESULTS) ? await readFile(RESULTS, 'utf8') : undefined;
    const jsonFile = path.join(dir, 'quick.json');
    const { code, stderr } = await runQuickBench(jsonFile);
    assert.equal(code, 0, `bench --quick failed:\n${stderr}`);

    const output: BenchJson = JSON.parse(await readFile(jsonFile, 'utf8'));
    assert.equal(output.quick, true);
    const measured = output.benchmarks.filter((benchmark) => benchmark.state === 'measured');
    assert.ok(
      measured.some((benchmark) => benchmark.name === 'api'),
      'the API benchmark ran',
    );
    assert.deepEqual(
      output.benchmarks.filter((benchmark) => benchmark.state === 'failed'),
      [],
    );
    for (const benchmark of measured) {
      assert.ok((benchmark.measurements ?? 0) > 0, `${benchmark.name} took measurements`);
      const rows = (benchmark.sections ?? []).flatMap((section) => section.table?.rows ?? []);
      assert.ok(rows.length > 0, `${benchmark.name} reported figures`);
    }
    assert.ok(output.benchmarks.every((benchmark) => ['measured', 'pending'].includes(benchmark.state)));
    // Issue 13's goal table at the top of RESULTS.md is filled by these benchmarks; each checks at least one goal.
    for (const name of ['api', 'backup', 'restore', 'cli-startup', 'startup', 'embedded-backup']) {
      const goals = measured.find((benchmark) => benchmark.name === name)?.goals ?? [];
      assert.ok(goals.length > 0, `${name} reports the goals it checks`);
      for (const goal of goals) assert.ok(goal.measure && goal.goal && goal.measured && typeof goal.met === 'boolean', `${name}: ${JSON.stringify(goal)}`);
    }

    const resultsAfter = existsSync(RESULTS) ? await readFile(RESULTS, 'utf8') : undefined;
    assert.equal(resultsAfter, resultsBefore, 'a quick run must not rewrite bench/RESULTS.md');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
