/**
 * V8 settings for the CLI commands that need other than V8's defaults (`db backup`), set by
 * bin/shipshape.js before any command code loads. Two reasons:
 *
 * MEMORY. `db backup` streams a database's worth of bytes through the process (the dump into
 * storage, then the re-read that verifies it).
 * Every chunk read from a pipe, a file or a socket is an ArrayBuffer outside the JavaScript
 * heap, freed only by a garbage collection. A streaming process allocates almost nothing else,
 * so with V8's default young generation (which grows to a 16 MB semi-space) a scavenge comes
 * rarely, and dead chunks pile up until V8's external-memory limit forces a full
 * collection some 64 MB later — later still on a loaded machine, where the concurrent marking
 * that collection starts runs behind. Measured on a 259 MB database to file storage: peak RSS
 * 163 MB with the defaults, 103 MB with the young generation kept at its initial size (dead
 * chunks stay under ~11 MB).
 *
 * The young generation is kept from growing (growth factor 1) rather than capped with
 * --max-semi-space-size: V8 reads that cap when the heap is set up, so setting it at run time
 * did nothing, whereas the growth factor is read each time the young generation would grow. It
 * must still be set before the command's code loads (loading 400 modules grows it). The server
 * never gets it: it allocates many short-lived objects, for which the default is right.
 *
 * TIME, on the embedded database. PGlite is PostgreSQL compiled to WebAssembly (pg_dump too):
 * V8 first compiles it with its baseline compiler (Liftoff), then recompiles hot functions with
 * TurboFan on background threads. A short command gains nothing from that — and at exit V8
 * waits for the recompilations in flight: with an empty embedded database, 3.5–11 s between
 * the run's last line and the process's exit on a loaded 2-core machine, and the run itself
 * slowed by the compiler threads taking the CPUs (--cpu-prof and strace: the main thread waits
 * on a futex while V8's worker threads write code pages). `--liftoff-only` keeps the baseline
 * code: `db backup` of that database went from 26.7–29.1 s to 10.4–14.7 s wall (interleaved,
 * load 19). Set at run time rather than on the command line, the flags it implies must be
 * spelled out too (without --no-wasm-tier-up and --no-wasm-dynamic-tiering the wait at exit
 * stayed). The long-running server keeps TurboFan, where it pays off.
 */
import { setFlagsFromString } from 'node:v8';

/** The V8 flags each tuned command (argument words after `shipshape`) runs with. */
const TUNED_COMMANDS: ReadonlyArray<{ readonly words: readonly string[]; readonly flags: readonly string[] }> = [
  { words: ['db', 'backup'], flags: ['--semi-space-growth-factor=1', '--liftoff-only', '--no-wasm-tier-up', '--no-wasm-dynamic-tiering'] },
];

/** The V8 flags for the command `argv` (process.argv) runs; none for `--help`. */
export function v8FlagsFor(argv: readonly string[]): readonly string[] {
  const words = argv.slice(2);
  if (words.includes('--help') || words.includes('-h')) return [];
  return TUNED_COMMANDS.find((command) => command.words.every((word, index) => words[index] === word))?.flags ?? [];
}

/** Sets the V8 flags for the command `argv` runs, for the rest of the process; returns them. */
export function tuneV8For(argv: readonly string[]): readonly string[] {
  const flags = v8FlagsFor(argv);
  for (const flag of flags) setFlagsFromString(flag);
  return flags;
}
