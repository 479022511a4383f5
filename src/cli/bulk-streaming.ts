/**
 * Memory for the CLI commands that stream a database's worth of bytes through the process
 * (`db backup`: the dump into storage, then the re-read that verifies it).
 *
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
 * must still be set before the command's code loads (loading 400 modules grows it), so
 * bin/shipshape.js calls this first. The server never gets it: it allocates many short-lived
 * objects, for which the default is right.
 */
import { setFlagsFromString } from 'node:v8';

/** The commands (argument words after `shipshape`) that stream bulk data. */
const BULK_STREAMING_COMMANDS: readonly (readonly string[])[] = [['db', 'backup']];

/** Whether `argv` (process.argv) runs a bulk-streaming command; `--help` does not count. */
export function streamsBulkData(argv: readonly string[]): boolean {
  const words = argv.slice(2);
  if (words.includes('--help') || words.includes('-h')) return false;
  return BULK_STREAMING_COMMANDS.some((command) => command.every((word, index) => words[index] === word));
}

/** Caps the young generation for the rest of the process when `argv` runs a bulk-streaming command. */
export function limitYoungGenerationFor(argv: readonly string[]): boolean {
  if (!streamsBulkData(argv)) return false;
  setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}
