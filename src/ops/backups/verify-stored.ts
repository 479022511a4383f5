/**
 * Proving a stored dump is the one that was written and that PostgreSQL can read it.
 *
 * The object is read back from storage (not from anything cached locally): its size and
 * SHA-256 must match what was measured while it streamed in, and — for custom archives —
 * `pg_restore --list` must accept it, fed from the same read, so one download does both.
 * pg_restore only needs the table of contents and may stop reading early; the rest of the
 * object is still read to finish the hash. Plain SQL dumps get parse-level checks instead:
 * pg_dump's header, its closing line (absent when a dump was cut off), and a CREATE TABLE
 * for every table the manifest counts.
 */
import { createHash } from 'node:crypto';
import type { ObjectStore } from '../../adapters/storage/index.ts';
import type { Config } from '../../config/index.ts';
import { ShipError } from '../../errors.ts';
import type { DumpFacts } from './manifest.ts';
import { toolVersion } from './pg-tools.ts';
import { PlainDumpScanner } from './plain-sql.ts';
import { spawnTool, ToolFeed, toolFailure } from './tool-process.ts';

export interface VerifyStoredOptions {
  readonly config: Config;
  readonly store: ObjectStore;
  readonly facts: Pick<DumpFacts, 'id' | 'dump' | 'tables'>;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((bytes: number) => void) | undefined;
}

/** Returns what was checked, in words; throws SHIP_ERR_BACKUP_NOT_VERIFIED on any mismatch. */
export async function verifyStoredDump(options: VerifyStoredOptions): Promise<string[]> {
  const { store, facts } = options;
  const key = facts.dump.objectKey;
  const notVerified = (problem: string) =>
    new ShipError(
      'SHIP_ERR_BACKUP_NOT_VERIFIED',
      `Backup ${facts.id} does not verify: ${problem}. Do not restore it; list the others with \`shipshape db backups\` and verify one with \`shipshape db verify <id>\`.`,
      { details: { backupId: facts.id } },
    );

  const info = await store.head(key);
  if (info === undefined) throw notVerified(`its dump ${key} is missing from ${store.location}`);
  if (info.bytes !== facts.dump.bytes) throw notVerified(`its stored dump is ${info.bytes} bytes, but ${facts.dump.bytes} were written`);

  const custom = facts.dump.format === 'custom';
  const lister = custom
    ? spawnTool((await toolVersion(options.config, 'pg_restore')).command, ['--list'], { env: process.env, stdin: 'pipe', signal: options.signal })
    : undefined;
  let listing = '';
  lister?.child.stdout?.setEncoding('utf8');
  lister?.child.stdout?.on('data', (chunk: string) => (listing += chunk));
  const scanner = custom ? undefined : new PlainDumpScanner();

  const hash = createHash('sha256');
  let bytes = 0;
  const feed = lister === undefined ? undefined : new ToolFeed(lister);
  try {
    const body = await store.get(key);
    for await (const chunk of body as AsyncIterable<Buffer>) {
      options.signal?.throwIfAborted();
      hash.update(chunk);
      bytes += chunk.length;
      options.onProgress?.(bytes);
      scanner?.push(chunk);
      await feed?.write(chunk);
    }
  } finally {
    feed?.end();
  }
  const sha256 = hash.digest('hex');
  if (bytes !== facts.dump.bytes) throw notVerified(`reading it back gave ${bytes} bytes, but ${facts.dump.bytes} were written`);
  if (sha256 !== facts.dump.sha256) throw notVerified(`its SHA-256 on re-read is ${sha256}, but ${facts.dump.sha256} was written (the stored bytes changed)`);
  const checks = [`size ${bytes} bytes and SHA-256 ${sha256.slice(0, 12)}… match on re-read from ${store.location}`];

  if (lister !== undefined) {
    const exit = await lister.exited;
    if (exit.code !== 0) throw notVerified(`pg_restore --list rejects it (${toolFailure(lister, exit).message})`);
    const entries = listing.split('\n').filter((line) => /^\d+;/.test(line));
    const missing = facts.tables.filter((table) => !hasTableData(listing, table.name)).map((table) => table.name);
    if (missing.length > 0) throw notVerified(`pg_restore --list shows no data for ${missing.join(', ')}`);
    checks.push(`pg_restore --list accepts it: ${entries.length} entries, data for all ${facts.tables.length} tables`);
  }
  if (scanner !== undefined) {
    const shape = scanner.finish();
    if (!shape.complete) throw notVerified("the SQL dump lacks pg_dump's header or closing line (it was cut off)");
    const missing = facts.tables.filter((table) => !shape.tables.has(table.name)).map((table) => table.name);
    if (missing.length > 0) throw notVerified(`the SQL dump creates no table ${missing.join(', ')}`);
    checks.push(`SQL dump is complete (pg_dump header and closing line) and creates all ${facts.tables.length} tables`);
  }
  return checks;
}

function hasTableData(listing: string, qualified: string): boolean {
  const dot = qualified.indexOf('.');
  const schema = qualified.slice(0, dot);
  const name = qualified.slice(dot + 1);
  return listing.includes(` TABLE DATA ${schema} ${name} `);
}
