/**
 * The embedded-backup benchmark's baseline, run as its own process: PGlite's own tools used
 * directly — open the data directory, `pgDump` with the arguments `shipshape db backup`
 * passes, write the file. Nothing else: no row counts, no hash, no re-read, no manifest.
 *
 *   node bench/lib/pglite-dump.ts <data dir> <output file>
 */
import { writeFile } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { pgDump } from '@electric-sql/pglite-tools/pg_dump';
import { PGLITE_DUMP_ARGUMENTS } from '../../src/ops/backups/dump-embedded.ts';

const [dataDir, outputFile] = process.argv.slice(2);
if (dataDir === undefined || outputFile === undefined) throw new Error('usage: pglite-dump.ts <data dir> <output file>');
const pglite = await PGlite.create(dataDir);
try {
  const dump = await pgDump({ pg: pglite, args: [...PGLITE_DUMP_ARGUMENTS] });
  await writeFile(outputFile, Buffer.from(await dump.arrayBuffer()));
} finally {
  await pglite.close();
}
