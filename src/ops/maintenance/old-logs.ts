/**
 * Clearing old application logs (runbook: `find /var/log/app -name "*.log" -mtime +30 -delete`).
 *
 * Like the runbook's `find`: regular files named `*.log` — and their rotated forms `*.log.1`,
 * `*.log.gz`, `*.log.1.gz`, which `find -name "*.log"` misses and logrotate leaves behind —
 * anywhere under the folder, last modified more than the retention ago. Symbolic links are
 * neither followed nor deleted: a link out of the log folder must not take anything with it.
 */
import { lstat, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { ShipError } from '../../errors.ts';

const LOG_NAME = /\.log(\.\d+)?(\.gz)?$/;
const DAY_MS = 86_400_000;

export interface OldLog {
  readonly path: string;
  readonly bytes: number;
  readonly modifiedAt: Date;
}

/** The log files under `directory` older than `retentionDays` at `now`. */
export async function findOldLogs(directory: string, retentionDays: number, now: Date): Promise<OldLog[]> {
  const cutoff = now.getTime() - retentionDays * DAY_MS;
  const found: OldLog[] = [];
  const info = await lstat(directory).catch((error: unknown) => {
    throw new ShipError(
      'SHIP_ERR_CONFIG',
      `APP_LOG_DIR ${directory} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}). Point APP_LOG_DIR at the application's log folder, or unset it.`,
    );
  });
  if (!info.isDirectory())
    throw new ShipError('SHIP_ERR_CONFIG', `APP_LOG_DIR ${directory} is not a folder. Point APP_LOG_DIR at the application's log folder, or unset it.`);
  const walk = async (folder: string): Promise<void> => {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile() && LOG_NAME.test(entry.name)) {
        const stats = await lstat(full);
        if (stats.mtimeMs < cutoff) found.push({ path: full, bytes: stats.size, modifiedAt: stats.mtime });
      }
    }
  };
  await walk(directory);
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

/** Deletes them; a file already gone counts as deleted (a second run, or logrotate got there first). */
export async function deleteLogs(logs: readonly OldLog[], signal?: AbortSignal): Promise<{ deleted: number; bytes: number }> {
  let deleted = 0;
  let bytes = 0;
  for (const log of logs) {
    signal?.throwIfAborted();
    try {
      await unlink(log.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    deleted += 1;
    bytes += log.bytes;
  }
  return { deleted, bytes };
}
