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

export function pgliteOptions(defaultStartParams: readonly string[]): PGliteOptions {
  return { startParams: [...defaultStartParams, '-c', `shared_buffers=${EMBEDDED_SHARED_BUFFERS}`] };
}
