/**
 * `pg_restore --list` as the judge of a custom-format archive: fed the archive's bytes as they
 * pass (from the dump on its way into storage, or from a re-read of the stored copy), it must
 * accept the archive and list data for every table the manifest counts.
 *
 * pg_restore only needs the table of contents at the start of the archive and exits once it has
 * printed it; the bytes after that are not fed to anyone (the feed stops quietly at EPIPE), so
 * the check costs a few kilobytes, not a second pass over the dump.
 */
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Config } from '../../config/index.ts';
import { ShipError } from '../../errors.ts';
import type { DumpFacts } from './manifest.ts';
import { toolCommand } from './pg-tools.ts';
import { spawnTool, type ToolExit, ToolFeed, toolFailure, type ToolProcess } from './tool-process.ts';

export class ArchiveCheck {
  readonly #lister: ToolProcess;
  readonly #feed: ToolFeed;
  #listing = '';

  constructor(config: Config, signal?: AbortSignal) {
    this.#lister = spawnTool(toolCommand(config, 'pg_restore'), ['--list'], { env: process.env, stdin: 'pipe', signal });
    this.#lister.child.stdout?.setEncoding('utf8');
    this.#lister.child.stdout?.on('data', (chunk: string) => (this.#listing += chunk));
    this.#feed = new ToolFeed(this.#lister);
  }

  /** Feeds one chunk of the archive, waiting while pg_restore is behind. */
  write(chunk: Buffer): Promise<void> {
    return this.#feed.write(chunk);
  }

  /** The archive ended (or its stream failed): pg_restore gets end of input. */
  end(): void {
    this.#feed.end();
  }

  /**
   * `source`, unchanged, with every chunk also fed to pg_restore. The returned stream fails with
   * `source`'s error, and pg_restore sees end of input only when `source` ended or failed.
   */
  tap(source: Readable): Readable {
    const check = this;
    const tapped = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        check.write(chunk).then(() => callback(null, chunk), callback);
      },
      flush(callback) {
        check.end();
        callback();
      },
    });
    tapped.on('close', () => check.end());
    // pipeline() hands source's error on to `tapped` (so its consumer fails with pg_dump's own
    // error) and destroys `source` when the consumer destroys `tapped`.
    pipeline(source, tapped).catch(() => undefined);
    return tapped;
  }

  #rejected(backupId: string, exit: ToolExit): ShipError | undefined {
    return exit.code === 0 ? undefined : notVerified(backupId, `pg_restore --list rejects it (${toolFailure(this.#lister, exit).message})`);
  }

  /** Stops pg_restore (the stream failed; no verdict will be asked for). */
  stop(): void {
    this.#feed.end();
    this.#lister.stop();
  }

  /**
   * Resolves with the error `verdict` will throw as soon as pg_restore exits rejecting the
   * archive (so a damaged dump can be stopped early), or with undefined once it exits content.
   */
  async rejection(backupId: string): Promise<ShipError | undefined> {
    const exit = await this.#lister.exited.catch(() => undefined);
    return exit === undefined ? undefined : this.#rejected(backupId, exit);
  }

  /**
   * pg_restore's verdict on what it was fed, in words. Throws SHIP_ERR_BACKUP_NOT_VERIFIED when
   * it rejects the archive or lists no data for a counted table.
   */
  async verdict(facts: Pick<DumpFacts, 'id' | 'tables'>, source: string): Promise<string> {
    const rejected = this.#rejected(facts.id, await this.#lister.exited);
    if (rejected !== undefined) throw rejected;
    const entries = this.#listing.split('\n').filter((line) => /^\d+;/.test(line));
    const missing = facts.tables.filter((table) => !hasTableData(this.#listing, table.name)).map((table) => table.name);
    if (missing.length > 0) throw notVerified(facts.id, `pg_restore --list shows no data for ${missing.join(', ')}`);
    return `pg_restore --list accepts it (${source}): ${entries.length} entries, data for all ${facts.tables.length} tables`;
  }
}

/** The error every failed check of a backup throws. */
export function notVerified(backupId: string, problem: string): ShipError {
  return new ShipError(
    'SHIP_ERR_BACKUP_NOT_VERIFIED',
    `Backup ${backupId} does not verify: ${problem}. Do not restore it; list the others with \`shipshape db backups\` and verify one with \`shipshape db verify <id>\`.`,
    { details: { backupId } },
  );
}

function hasTableData(listing: string, qualified: string): boolean {
  const dot = qualified.indexOf('.');
  const schema = qualified.slice(0, dot);
  const name = qualified.slice(dot + 1);
  return listing.includes(` TABLE DATA ${schema} ${name} `);
}
