/**
 * V8's young generation for the long-running processes (`serve`, `worker`).
 *
 * Node 24 lets the young generation grow to 64 MB per semi-space (128 MB in all) whenever
 * allocation is brisk — as it is while a server loads its ~1,000 modules — and the pages it gives
 * back when it shrinks are released lazily, so they stay in the resident set: an idle API server
 * held ≈170 MB RSS of which ≈50 MB was that nursery (bench/startup.ts). Kept at V8's initial size
 * (1 MB per semi-space) the server stays near 120 MB; under load it scavenges more often
 * (a few percent of throughput in the measurements). An operator who prefers the throughput sets
 * NODE_OPTIONS=--max-semi-space-size=<MB>, which is then left alone.
 */
import { setFlagsFromString } from 'node:v8';

/** Stops the young generation from growing unless Node was told a semi-space size; says whether it did. */
export function keepYoungGenerationSmall(nodeOptions: string | undefined, execArgv: readonly string[] = process.execArgv): boolean {
  if ([...execArgv, nodeOptions ?? ''].some((option) => option.includes('semi-space'))) return false;
  // The only young-generation flag V8 still reads after start-up: the maximum is fixed when the heap is made.
  setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}
