/**
 * V8 settings for the CLI commands that need other than V8's defaults, set by bin/shipshape.js
 * before any command code loads. Two reasons:
 *
 * MEMORY (`serve`, `worker`, `db backup`). V8 lets the young generation grow to a 16 MB
 * semi-space — Node 24 up to 64 MB — whenever allocation is brisk, as it is while a process
 * loads its ~1,000 modules, and the pages it gives back when it shrinks stay resident.
 * - An idle API server held ≈170 MB RSS, ≈50 MB of it that nursery; kept at V8's initial size
 *   (1 MB per semi-space) it stays near 120 MB (bench/startup.ts). Under load it scavenges more
 *   often: a few percent of throughput in the measurements.
 * - `db backup` streams a database's worth of bytes through the process. Every chunk read from
 *   a pipe, a file or a socket is an ArrayBuffer outside the heap, freed only by a garbage
 *   collection; with a grown young generation a scavenge comes rarely and dead chunks pile up
 *   until V8's external-memory limit forces a full collection some 64 MB later. On a 259 MB
 *   database to file storage: peak RSS 163 MB with the defaults, 94 MB with this.
 * The young generation is kept from growing (growth factor 1) rather than capped with
 * --max-semi-space-size: V8 reads that cap when the heap is set up, so setting it at run time
 * does nothing, whereas the growth factor is read each time the young generation would grow.
 * An operator who prefers the throughput sets NODE_OPTIONS=--max-semi-space-size=<MB>, and
 * this is then left alone.
 *
 * TIME, on the embedded database (`db backup`). PGlite is PostgreSQL compiled to WebAssembly
 * (pg_dump too): V8 first compiles it with its baseline compiler (Liftoff), then recompiles hot
 * functions with TurboFan on background threads. A short command gains nothing from that — and
 * at exit V8 waits for the recompilations in flight: with an empty embedded database, 3.5–11 s
 * between the run's last line and the process's exit on a loaded 2-core machine, and the run
 * itself slowed by the compiler threads taking the CPUs (--cpu-prof and strace: the main thread
 * waits on a futex while V8's worker threads write code pages). `--liftoff-only` keeps the
 * baseline code: `db backup` of that database went from 26.7–29.1 s to 10.4–14.7 s wall
 * (interleaved, load 19). Set at run time rather than on the command line, the flags it implies
 * must be spelled out too (without --no-wasm-tier-up and --no-wasm-dynamic-tiering the wait at
 * exit stayed). The long-running server keeps TurboFan, where it pays off.
 */
import { setFlagsFromString } from 'node:v8';

const SMALL_YOUNG_GENERATION = '--semi-space-growth-factor=1';
const BASELINE_WASM_ONLY = ['--liftoff-only', '--no-wasm-tier-up', '--no-wasm-dynamic-tiering'];

/** The V8 flags each tuned command (argument words after `shipshape`) runs with. */
const TUNED_COMMANDS: ReadonlyArray<{ readonly words: readonly string[]; readonly flags: readonly string[] }> = [
  { words: ['serve'], flags: [SMALL_YOUNG_GENERATION] },
  { words: ['worker'], flags: [SMALL_YOUNG_GENERATION] },
  { words: ['db', 'backup'], flags: [SMALL_YOUNG_GENERATION, ...BASELINE_WASM_ONLY] },
];

/**
 * The V8 flags for the command `argv` (process.argv) runs; none for `--help`. A semi-space size
 * the operator gave Node (NODE_OPTIONS or the command line) wins over the small young generation.
 */
export function v8FlagsFor(argv: readonly string[], nodeOptions = process.env.NODE_OPTIONS, execArgv: readonly string[] = process.execArgv): readonly string[] {
  const words = argv.slice(2);
  if (words.includes('--help') || words.includes('-h')) return [];
  const flags = TUNED_COMMANDS.find((command) => command.words.every((word, index) => words[index] === word))?.flags ?? [];
  const operatorSizedIt = [...execArgv, nodeOptions ?? ''].some((option) => option.includes('semi-space'));
  return operatorSizedIt ? flags.filter((flag) => flag !== SMALL_YOUNG_GENERATION) : flags;
}

/** Sets the V8 flags for the command `argv` runs, for the rest of the process; returns them. */
export function tuneV8For(argv: readonly string[]): readonly string[] {
  const flags = v8FlagsFor(argv);
  for (const flag of flags) setFlagsFromString(flag);
  return flags;
}
