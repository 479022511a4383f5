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
 * WEBASSEMBLY (`serve`, `db backup`). PGlite, the embedded database, is PostgreSQL compiled to
 * WebAssembly (pg_dump too): V8 first compiles it with its baseline compiler (Liftoff), then
 * recompiles hot functions with TurboFan on background threads. The flags in
 * src/db/embedded-options.ts keep the baseline code:
 * - `serve` on the embedded database: optimising PostgreSQL's huge hot functions took ≈680 MB
 *   of compiler memory within a second of the first queries, so the server peaked near 800 MB
 *   and kept ≈270–300 MB idle; with baseline code only, ≈200 MB peak and ≈180–200 MB idle, for
 *   ≈10–15% fewer requests per second on the embedded API (docs/architecture.md). `serve` on
 *   PostgreSQL gets the same flags, although it runs no WebAssembly worth the name: V8 keys
 *   the compile cache's code (bin/shipshape.js) to the flags in force, so two flag sets for one
 *   command would make each start on one database discard and rewrite the code the last start
 *   on the other cached (measured: ~590 modules rejected per start, alternating).
 * - `db backup`: a short command gains nothing from TurboFan — and at exit V8 waits for the
 *   recompilations in flight: with an empty embedded database, 3.5–11 s between the run's last
 *   line and the process's exit on a loaded 2-core machine, and the run itself slowed by the
 *   compiler threads taking the CPUs (--cpu-prof and strace: the main thread waits on a futex
 *   while V8's worker threads write code pages). `db backup` of that database went from
 *   26.7–29.1 s to 10.4–14.7 s wall (interleaved, load 19).
 * Set at run time rather than on the command line, the flags --liftoff-only implies must be
 * spelled out too (without --no-wasm-tier-up and --no-wasm-dynamic-tiering the wait at exit
 * stayed). An operator who gives Node a WebAssembly flag (`node --wasm-tier-up
 * bin/shipshape.js serve`; V8 refuses them in NODE_OPTIONS) gets that instead.
 */
import { setFlagsFromString } from 'node:v8';
import { BASELINE_WASM_ONLY } from '../db/embedded-options.ts';

const SMALL_YOUNG_GENERATION = '--semi-space-growth-factor=1';

/** The V8 flags each tuned command (argument words after `shipshape`) runs with. */
const TUNED_COMMANDS: ReadonlyArray<{ readonly words: readonly string[]; readonly flags: readonly string[] }> = [
  { words: ['serve'], flags: [SMALL_YOUNG_GENERATION, ...BASELINE_WASM_ONLY] },
  { words: ['worker'], flags: [SMALL_YOUNG_GENERATION] },
  { words: ['db', 'backup'], flags: [SMALL_YOUNG_GENERATION, ...BASELINE_WASM_ONLY] },
];

/**
 * The V8 flags for the command `argv` (process.argv) runs; none for `--help`. What the operator
 * gave Node (NODE_OPTIONS or the command line) wins: a semi-space size over the small young
 * generation, any WebAssembly flag over the baseline-only ones.
 */
export function v8FlagsFor(argv: readonly string[], nodeOptions = process.env.NODE_OPTIONS, execArgv: readonly string[] = process.execArgv): readonly string[] {
  const words = argv.slice(2);
  if (words.includes('--help') || words.includes('-h')) return [];
  const flags = TUNED_COMMANDS.find((command) => command.words.every((word, index) => words[index] === word))?.flags ?? [];
  const given = [...execArgv, nodeOptions ?? ''];
  const operatorSizedIt = given.some((option) => option.includes('semi-space'));
  const operatorTunedWasm = given.some((option) => /wasm|liftoff/.test(option));
  return flags.filter((flag) => !(operatorSizedIt && flag === SMALL_YOUNG_GENERATION) && !(operatorTunedWasm && BASELINE_WASM_ONLY.includes(flag)));
}

/** Sets the V8 flags for the command `argv` runs, for the rest of the process; returns them. */
export function tuneV8For(argv: readonly string[]): readonly string[] {
  const flags = v8FlagsFor(argv);
  for (const flag of flags) setFlagsFromString(flag);
  return flags;
}
