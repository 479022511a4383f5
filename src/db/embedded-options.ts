/**
 * How Shipshape starts PGlite, shared by the server (embedded.ts) and the process that creates
 * the cluster (embedded-create.ts), so both run the same configuration.
 */
import type { PGliteOptions } from '@electric-sql/pglite';

/**
 * shared_buffers 16 MB instead of PostgreSQL's 128 MB: PGlite's buffers live in the WASM heap,
 * which never shrinks, so the default made an idle embedded server hold ≈360 MB; with 16 MB it
 * holds ≈230 MB. A single-user embedded database (a development machine, a small deployment)
 * reads its working set from the page cache just as well.
 */
export const EMBEDDED_SHARED_BUFFERS = '16MB';

/**
 * V8 flags for a process that runs PGlite: WebAssembly stays in Liftoff, V8's baseline
 * compiler; TurboFan never recompiles it. PostgreSQL's hottest functions are huge once compiled
 * to WASM (the executor, the parser), and optimising them took V8 ≈680 MB of compiler memory
 * within a second of PGlite's first queries: a server's resident set peaked near 800 MB, and
 * kept ≈90 MB more once idle (the optimised code, and the allocator's arenas it left behind).
 * Baseline code costs the embedded API ≈10–15% of its requests per second (docs/architecture.md);
 * a short process (initdb, `db backup`) gains outright, since it exits without waiting for
 * recompilations in flight. Set on the command line (the initdb process) or by
 * src/cli/command-tuning.ts before PGlite loads; at run time the flags --liftoff-only implies
 * must be spelled out too.
 */
export const BASELINE_WASM_ONLY: readonly string[] = ['--liftoff-only', '--no-wasm-tier-up', '--no-wasm-dynamic-tiering'];

export function pgliteOptions(defaultStartParams: readonly string[]): PGliteOptions {
  return { startParams: [...defaultStartParams, '-c', `shared_buffers=${EMBEDDED_SHARED_BUFFERS}`] };
}
