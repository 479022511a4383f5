/**
 * Proving a stored dump is the one that was written and that PostgreSQL can read it.
 *
 * `verifyStoredDump` reads the object back from storage (not from anything cached locally):
 * its size and SHA-256 must match what was measured while it streamed in, and — for custom
 * archives — `pg_restore --list` must accept it, fed from the same read, so one download does
 * both. Plain SQL dumps get parse-level checks instead: pg_dump's header, its closing line
 * (absent when a dump was cut off), and a CREATE TABLE for every table the manifest counts.
 *
 * `db backup` asks the same of the copy it has just stored, except `pg_restore --list`: that
 * ran on the very stream the SHA-256 was measured on (dump-postgres.ts), so a stored copy with
 * the same SHA-256 is the archive it accepted. `db verify`, a restore's prerequisite and
 * `--verify-restore` run every check.
 */
import { createHash } from 'node:crypto';
import type { ObjectStore } from '../../adapters/storage/index.ts';
import type { Config } from '../../config/index.ts';
import { ArchiveCheck, notVerified } from './archive-check.ts';
import type { DumpFacts } from './manifest.ts';
import { PlainDumpScanner } from './plain-sql.ts';

export interface VerifyStoredOptions {
  readonly config: Config;
  readonly store: ObjectStore;
  readonly facts: Pick<DumpFacts, 'id' | 'dump' | 'tables'>;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((bytes: number) => void) | undefined;
  /**
   * `pg_restore --list` already accepted these bytes as they streamed into storage (its verdict
   * is among the stream's checks): the re-read then checks size and SHA-256 only.
   */
  readonly listedOnTheWayIn?: boolean | undefined;
}

/** The stored object is there and as long as what was written, by the store's own account (a HEAD on S3, a stat of the file). */
async function confirmStoredSize(store: ObjectStore, facts: Pick<DumpFacts, 'id' | 'dump'>): Promise<string> {
  const key = facts.dump.objectKey;
  const info = await store.head(key);
  if (info === undefined) throw notVerified(facts.id, `its dump ${key} is missing from ${store.location}`);
  if (info.bytes !== facts.dump.bytes) throw notVerified(facts.id, `its stored dump is ${info.bytes} bytes, but ${facts.dump.bytes} were written`);
  return `stored object is ${info.bytes} bytes in ${store.location}, as written`;
}

/** Returns what was checked, in words; throws SHIP_ERR_BACKUP_NOT_VERIFIED on any mismatch. */
export async function verifyStoredDump(options: VerifyStoredOptions): Promise<string[]> {
  const { store, facts } = options;
  await confirmStoredSize(store, facts);

  const archive = facts.dump.format === 'custom' && !options.listedOnTheWayIn ? new ArchiveCheck(options.config, options.signal) : undefined;
  const scanner = facts.dump.format === 'plain' ? new PlainDumpScanner() : undefined;

  const hash = createHash('sha256');
  let bytes = 0;
  try {
    const body = await store.get(facts.dump.objectKey);
    for await (const chunk of body as AsyncIterable<Buffer>) {
      options.signal?.throwIfAborted();
      hash.update(chunk);
      bytes += chunk.length;
      options.onProgress?.(bytes);
      scanner?.push(chunk);
      await archive?.write(chunk);
    }
  } catch (error) {
    archive?.stop();
    throw error;
  } finally {
    archive?.end();
  }
  const sha256 = hash.digest('hex');
  if (bytes !== facts.dump.bytes) throw notVerified(facts.id, `reading it back gave ${bytes} bytes, but ${facts.dump.bytes} were written`);
  if (sha256 !== facts.dump.sha256)
    throw notVerified(facts.id, `its SHA-256 on re-read is ${sha256}, but ${facts.dump.sha256} was written (the stored bytes changed)`);
  const checks = [`size ${bytes} bytes and SHA-256 ${sha256.slice(0, 12)}… match on re-read from ${store.location}`];

  if (archive !== undefined) checks.push(await archive.verdict(facts, 'on re-read'));
  if (scanner !== undefined) {
    const shape = scanner.finish();
    if (!shape.complete) throw notVerified(facts.id, "the SQL dump lacks pg_dump's header or closing line (it was cut off)");
    const missing = facts.tables.filter((table) => !shape.tables.has(table.name)).map((table) => table.name);
    if (missing.length > 0) throw notVerified(facts.id, `the SQL dump creates no table ${missing.join(', ')}`);
    checks.push(`SQL dump is complete (pg_dump header and closing line) and creates all ${facts.tables.length} tables`);
  }
  return checks;
}
