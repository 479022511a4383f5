/**
 * Running the benchmarks one after another (never in parallel: they would measure each
 * other) and collecting an outcome for each, including the pending ones.
 */
import { ShipError } from '../../src/errors.ts';
import { discoverBenchmarks, presentSubjects } from './discover.ts';
import type { MachineInfo } from './machine.ts';
import type { Outcome } from './report.ts';
import { isMeasurable } from './types.ts';

export interface HarnessOptions {
  readonly quick: boolean;
  /** Names to run; the others are reported as skipped. */
  readonly only: readonly string[] | undefined;
  readonly adminUrl: string;
  readonly machine: MachineInfo;
  readonly progress: (line: string) => void;
}

export async function runBenchmarks(options: HarnessOptions): Promise<Outcome[]> {
  const benchmarks = await discoverBenchmarks();
  const unknown = (options.only ?? []).filter((name) => !benchmarks.some((benchmark) => benchmark.name === name));
  if (unknown.length > 0) {
    throw new ShipError(
      'SHIP_ERR_VALIDATION',
      `No benchmark named ${unknown.join(', ')}. Known: ${benchmarks.map((benchmark) => benchmark.name).join(', ')}. Run \`npm run bench -- --list\` to see them.`,
    );
  }
  const outcomes: Outcome[] = [];
  for (const benchmark of benchmarks) {
    if (options.only && !options.only.includes(benchmark.name)) {
      outcomes.push({ benchmark, state: 'skipped' });
      continue;
    }
    if (!isMeasurable(benchmark)) {
      const landed = await presentSubjects(benchmark.pending.waitsFor);
      const reason = landed.length
        ? `${benchmark.pending.reason} Its subject may have landed since (${landed.join(', ')} now exists): the benchmark is still to be written in bench/${benchmark.name}.ts.`
        : benchmark.pending.reason;
      outcomes.push({ benchmark, state: 'pending', reason });
      continue;
    }
    options.progress(`${benchmark.name}: starting${options.quick ? ' (quick)' : ''}`);
    const started = performance.now();
    try {
      const report = await benchmark.run({ quick: options.quick, adminUrl: options.adminUrl, machine: options.machine, progress: options.progress });
      outcomes.push({ benchmark, state: 'measured', report, seconds: (performance.now() - started) / 1000 });
    } catch (error) {
      options.progress(`${benchmark.name}: failed: ${(error as Error).stack ?? String(error)}`);
      outcomes.push({ benchmark, state: 'failed', error: (error as Error).message });
    }
  }
  return outcomes;
}
