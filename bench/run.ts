/**
 * `npm run bench [-- options]`: runs every benchmark in bench/ and prints the figures.
 *
 *   --quick              small sizes and short runs (under two minutes); never touches RESULTS.md
 *   --only api,backup    run just these (RESULTS.md is then not rewritten either)
 *   --list               list the benchmarks and whether each is measurable yet
 *   --json <file>        also write the outcomes as JSON (what the CI test reads)
 *   --postgres-url <url> maintenance URL of the server to use (default: BENCH_POSTGRES_URL or
 *                        postgres://postgres@127.0.0.1:5432/postgres)
 *
 * Only a full run of everything rewrites bench/RESULTS.md, so a quick run in CI can never
 * replace real figures with toy ones.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ShipError } from '../src/errors.ts';
import { DEFAULT_ADMIN_URL } from './lib/database.ts';
import { discoverBenchmarks, presentSubjects } from './lib/discover.ts';
import { runBenchmarks } from './lib/harness.ts';
import { currentLoadAverage, describeMachine } from './lib/machine.ts';
import { resultsFile } from './lib/paths.ts';
import { findPgbench } from './lib/pgbench.ts';
import { renderGoals, renderMachine, renderOutcome, renderResultsFile, renderTable, type Outcome } from './lib/report.ts';
import { isMeasurable } from './lib/types.ts';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      list: { type: 'boolean', default: false },
      json: { type: 'string' },
      'postgres-url': { type: 'string' },
    },
    strict: true,
  });
  if (values.list) return list();

  const adminUrl = values['postgres-url'] ?? process.env.BENCH_POSTGRES_URL ?? DEFAULT_ADMIN_URL;
  const only = values.only
    ?.split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const progress = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  const machine = await describeMachine(adminUrl, await findPgbench());
  if (!values.quick && machine.loadAverage[0] !== undefined && machine.loadAverage[0] > machine.cores * 0.75) {
    progress(
      `warning: the 1-minute load average is ${machine.loadAverage[0].toFixed(2)} on ${machine.cores} cores; absolute figures will be low, ratios still hold best`,
    );
  }
  const outcomes = await runBenchmarks({ quick: values.quick, only, adminUrl, machine, progress });
  const loadAfter = currentLoadAverage();

  const command = ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ');
  process.stdout.write(`# Benchmark results${values.quick ? ' (quick: checks the scripts; the figures are not for comparison)' : ''}\n\n`);
  process.stdout.write(`${renderTable(renderMachine(machine, loadAfter))}\n\n`);
  process.stdout.write(`## Goals\n\n${renderGoals(outcomes)}\n\n`);
  for (const outcome of outcomes) process.stdout.write(`${renderOutcome(outcome)}\n\n`);

  const failed = outcomes.filter((outcome) => outcome.state === 'failed');
  if (values.quick || only) {
    progress(`${values.quick ? 'quick' : 'partial'} run: ${resultsFile} was not changed (only a full run of every benchmark rewrites it)`);
  } else if (failed.length > 0) {
    progress(`${failed.length} benchmark(s) failed, so ${resultsFile} was not rewritten`);
  } else {
    await writeFile(resultsFile, renderResultsFile({ date: new Date(), command, machine, loadAfter, outcomes }));
    progress(`wrote ${resultsFile}`);
  }
  if (values.json) await writeFile(values.json, `${JSON.stringify(toJson(outcomes, values.quick), null, 2)}\n`);
  return failed.length > 0 ? 1 : 0;
}

async function list(): Promise<number> {
  const rows: string[][] = [];
  for (const benchmark of await discoverBenchmarks()) {
    const state = isMeasurable(benchmark)
      ? 'measurable'
      : `not yet measurable${(await presentSubjects(benchmark.pending.waitsFor)).length ? ' (subject may have landed)' : ''}: ${benchmark.pending.reason}`;
    rows.push([String(benchmark.order), benchmark.name, benchmark.title, state]);
  }
  process.stdout.write(`${renderTable({ columns: ['#', 'Name', 'Title', 'State'], rows })}\n`);
  return 0;
}

function toJson(outcomes: readonly Outcome[], quick: boolean) {
  return {
    quick,
    benchmarks: outcomes.map((outcome) => ({
      name: outcome.benchmark.name,
      state: outcome.state,
      ...(outcome.state === 'measured'
        ? {
            seconds: outcome.seconds,
            measurements: outcome.report.measurements,
            size: outcome.report.size,
            sections: outcome.report.sections,
            goals: outcome.report.goals ?? [],
          }
        : {}),
      ...(outcome.state === 'pending' ? { reason: outcome.reason } : {}),
      ...(outcome.state === 'failed' ? { error: outcome.error } : {}),
    })),
  };
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const message = error instanceof ShipError ? `${error.code}: ${error.message}` : ((error as Error).stack ?? String(error));
    process.stderr.write(`bench: ${message}\n`);
    process.exitCode = error instanceof ShipError ? error.exitCode : 1;
  },
);
