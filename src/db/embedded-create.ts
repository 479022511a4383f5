/**
 * Creates the embedded database cluster in a data directory, in a process of its own
 * (`node src/db/embedded-create.ts <data-dir>`, started by embedded.ts on the first start).
 *
 * PGlite runs initdb in a second WASM instance and copies the whole WASM heap around it: the
 * process that does it peaks above 1 GB and keeps several hundred MB it no longer uses. Here that
 * memory goes back to the system when this process exits, and the server that waits for it
 * keeps its event loop (and so its progress lines) while the cluster is made.
 */
import { PGlite } from '@electric-sql/pglite';
import { pgliteOptions } from './embedded-options.ts';

const dataDir = process.argv[2];
if (!dataDir) {
  process.stderr.write('usage: embedded-create.ts <data-dir>\n');
  process.exit(2);
}
const pglite = await PGlite.create(dataDir, pgliteOptions(PGlite.defaultStartParams));
await pglite.close();
