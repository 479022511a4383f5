/**
 * The contract every benchmark file (`bench/<name>.ts`) fulfils: it exports `benchmark`,
 * either measurable (it has `run`) or pending (its subject has not landed yet, and it
 * says why). `bench/run.ts` discovers the files, runs the measurable ones and writes
 * every one of them, pending or not, into the results.
 */
import type { MachineInfo } from './machine.ts';

/** A table of figures, already formatted as text, exactly as printed and written to RESULTS.md. */
export interface Table {
  readonly columns: readonly string[];
  readonly rows: ReadonlyArray<readonly string[]>;
}

export interface ReportSection {
  readonly heading: string;
  /** A paragraph before the table: what the rows mean. */
  readonly intro?: string;
  readonly table?: Table;
  /** Findings and caveats, one bullet each. */
  readonly notes?: readonly string[];
  /** Verbatim text (scripts, SQL), shown in a code block. */
  readonly code?: string;
}

/**
 * One row of issue 13's goal table, checked by the benchmark that measured it: what, against
 * which baseline of the same run, the goal, the figure, and whether the goal was met.
 */
export interface GoalCheck {
  /** e.g. "`shipshape runs`, CPU". */
  readonly measure: string;
  /** The baseline measured in the same run, e.g. "`node -e 0` on the same Node"; "–" for an absolute goal. */
  readonly baseline: string;
  /** e.g. "≤ 4×". */
  readonly goal: string;
  /** The figure as printed, e.g. "3.10× (2.90–3.40)". */
  readonly measured: string;
  readonly met: boolean;
}

export interface BenchmarkReport {
  /** What was measured and at which size, in one line (e.g. "10,000 users × 100 tasks"). */
  readonly size: string;
  readonly sections: readonly ReportSection[];
  /** The exact commands this benchmark ran (load generator, pgbench, server), for RESULTS.md. */
  readonly commands: readonly string[];
  /** How many individual measurements (runs) produced the figures; 0 means nothing was measured. */
  readonly measurements: number;
  /** The headline findings, one sentence each, for the summary at the top of RESULTS.md. */
  readonly summary: readonly string[];
  /** The goals this benchmark checks, for the goal table at the top of RESULTS.md. */
  readonly goals?: readonly GoalCheck[];
}

export interface BenchmarkContext {
  /** Small sizes and short runs: checks that the scripts still work, not how fast anything is. */
  readonly quick: boolean;
  /** A maintenance connection URL (database `postgres`) on the server under test. */
  readonly adminUrl: string;
  readonly machine: MachineInfo;
  /** Progress for the operator watching (stderr); never part of the results. */
  readonly progress: (line: string) => void;
}

interface BenchmarkIdentity {
  /** The file name without `.ts`, used by `--only`. */
  readonly name: string;
  /** Position in RESULTS.md: the numbering. */
  readonly order: number;
  readonly title: string;
  /** What is measured against what, in a sentence or two. */
  readonly description: string;
}

export interface MeasurableBenchmark extends BenchmarkIdentity {
  run(context: BenchmarkContext): Promise<BenchmarkReport>;
}

export interface PendingBenchmark extends BenchmarkIdentity {
  readonly pending: {
    /** Why it cannot be measured yet, e.g. "`shipshape db backup` has not landed". */
    readonly reason: string;
    /** Paths (relative to the project root) whose arrival makes it measurable. */
    readonly waitsFor: readonly string[];
  };
}

export type Benchmark = MeasurableBenchmark | PendingBenchmark;

export function isMeasurable(benchmark: Benchmark): benchmark is MeasurableBenchmark {
  return 'run' in benchmark;
}
