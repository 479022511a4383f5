/**
 * ObjectStore on a local folder (`file:///abs/path`): each key is a file under the folder.
 *
 * Writes go to a temp file in the destination folder and are renamed into place after fsync, so
 * an object appears under its key only complete (rename within one filesystem is atomic), and a
 * crash mid-write leaves only a temp file that list() ignores.
 */
import { randomUUID } from 'node:crypto';
import { type FileHandle, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';

import { describeError, errnoCode, ShipError } from '../../errors.ts';
import { BaseObjectStore } from './base-object-store.ts';
import { callerFailure, meterSource, stopOnAbort } from './metered-stream.ts';
import { compareKeys, isValidKey, TEMP_NAME_PREFIX, validateKey, validatePrefix } from './object-key.ts';
import type { ObjectInfo, PutOptions, PutResult } from './object-store.ts';
import type { FileTarget } from './storage-url.ts';

/** Backups and GDPR exports hold personal data: readable by the service's own user only. */
const FILE_MODE = 0o600;

type Action = 'write' | 'read' | 'list' | 'delete';

export class FileObjectStore extends BaseObjectStore {
  readonly location: string;
  readonly #root: string;
  readonly #settingName: string;

  constructor(target: FileTarget, settingName: string) {
    super();
    this.location = target.location;
    this.#root = target.root;
    this.#settingName = settingName;
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<PutResult> {
    const metered = meterSource(body, options.onProgress);
    const unhookAbort = stopOnAbort(options.signal, metered);
    let tempPath: string | undefined;
    try {
      const path = this.#pathOf(key);
      options.signal?.throwIfAborted();
      const folder = dirname(path);
      await mkdir(folder, { recursive: true });
      tempPath = join(folder, `${TEMP_NAME_PREFIX}${randomUUID()}`);
      // Fsynced before the rename, so the rename publishes durable bytes.
      await writeDurably(tempPath, metered.body);
      await rename(tempPath, path);
      tempPath = undefined;
      await syncFolder(folder);
      return { key, ...metered.digest() };
    } catch (error) {
      metered.stop();
      if (tempPath !== undefined) await rm(tempPath, { force: true }).catch(() => undefined);
      const fromCaller = callerFailure(metered, options.signal);
      if (fromCaller !== undefined) throw fromCaller.error;
      throw this.#fsError(error, 'write', key);
    } finally {
      unhookAbort();
    }
  }

  async get(key: string): Promise<Readable> {
    const path = this.#pathOf(key);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (isMissing(error)) throw this.#notFound(key);
      throw this.#fsError(error, 'read', key);
    }
    try {
      // open() succeeds on a folder; reading it would fail later with EISDIR.
      if (!(await handle.stat()).isFile()) throw this.#notFound(key);
    } catch (error) {
      await handle.close();
      throw error instanceof ShipError ? error : this.#fsError(error, 'read', key);
    }
    return handle.createReadStream();
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const path = this.#pathOf(key);
    try {
      const info = await stat(path);
      return info.isFile() ? { key, bytes: info.size, modifiedAt: info.mtime } : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw this.#fsError(error, 'read', key);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    validatePrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    const found: ObjectInfo[] = [];
    await this.#collect(slash === -1 ? '' : prefix.slice(0, slash), prefix, found);
    return found.sort((a, b) => compareKeys(a.key, b.key));
  }

  async delete(key: string): Promise<void> {
    const path = this.#pathOf(key);
    try {
      await unlink(path);
    } catch (error) {
      // A key naming a folder holds no object, so there is nothing to delete (EISDIR on Linux).
      if (isMissing(error) || errnoCode(error) === 'EISDIR') return;
      throw this.#fsError(error, 'delete', key);
    }
  }

  #pathOf(key: string): string {
    return join(this.#root, ...validateKey(key));
  }

  async #collect(folderKey: string, prefix: string, found: ObjectInfo[]): Promise<void> {
    const folder = folderKey === '' ? this.#root : join(this.#root, ...folderKey.split('/'));
    let entries;
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (error) {
      // No folder yet means nothing stored yet (the first put creates it).
      if (isMissing(error)) return;
      throw this.#fsError(error, 'list', folderKey === '' ? undefined : folderKey);
    }
    for (const entry of entries) {
      const key = folderKey === '' ? entry.name : `${folderKey}/${entry.name}`;
      // Temp files of writes in progress, and names no key could address, are not objects.
      if (!isValidKey(key)) continue;
      if (entry.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await this.#collect(key, prefix, found);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const info = await stat(join(folder, entry.name)).catch((error: unknown) => {
          if (isMissing(error)) return undefined; // deleted while we listed
          throw this.#fsError(error, 'list', key);
        });
        if (info !== undefined) found.push({ key, bytes: info.size, modifiedAt: info.mtime });
      }
    }
  }

  #notFound(key: string): ShipError {
    return new ShipError('SHIP_ERR_STORAGE_NOT_FOUND', `There is no object \`${key}\` in ${this.location}. Check the name, or list what is stored there.`, {
      details: { key, location: this.location },
    });
  }

  #fsError(error: unknown, action: Action, key: string | undefined): ShipError {
    if (error instanceof ShipError) return error;
    const code = errnoCode(error);
    const what = key === undefined ? this.location : `\`${key}\` in ${this.location}`;
    const details = { key, location: this.location, errno: code };
    const options = { cause: error, details };
    switch (code) {
      case 'EACCES':
      case 'EPERM':
        return new ShipError(
          'SHIP_ERR_STORAGE_UNAVAILABLE',
          `Permission denied to ${action} ${what} (${code}). Give the user running Shipshape access to ${this.#root}, or change ${this.#settingName}.`,
          options,
        );
      case 'EROFS':
        return new ShipError(
          'SHIP_ERR_STORAGE_UNAVAILABLE',
          `Cannot ${action} ${what}: the filesystem is read-only (EROFS). Remount it read-write or change ${this.#settingName}.`,
          options,
        );
      case 'ENOSPC':
      case 'EDQUOT':
        return new ShipError(
          'SHIP_ERR_STORAGE_WRITE_FAILED',
          `Cannot ${action} ${what}: no space left on the disk holding ${this.#root} (${code}). Free space, or point ${this.#settingName} at a larger disk.`,
          options,
        );
      case 'ENOTDIR':
      case 'EEXIST':
      case 'EISDIR':
        return new ShipError(
          'SHIP_ERR_STORAGE_WRITE_FAILED',
          `Cannot ${action} ${what}: a file stands where a folder is needed, or a folder where a file is (${code}). Use another key or clear the path.`,
          options,
        );
      default:
        return new ShipError(
          action === 'write' ? 'SHIP_ERR_STORAGE_WRITE_FAILED' : 'SHIP_ERR_STORAGE_UNAVAILABLE',
          `Cannot ${action} ${what}: ${describeError(error)}. Check the disk and ${this.#settingName}.`,
          options,
        );
    }
  }
}

function isMissing(error: unknown): boolean {
  const code = errnoCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Makes the rename durable; best effort, as some filesystems refuse fsync on a folder. */
async function syncFolder(folder: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(folder, 'r');
    await handle.sync();
  } catch {
    // The object is complete and visible; only its durability across a power cut is weaker.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Bytes gathered before one write. A pipe delivers pg_dump's archive 4 KiB at a time, and a
 * write stream makes each chunk one write through libuv's thread pool: ~60,000 per 244 MB
 * dump. Gathered (without copying: one writev per batch) that is ~250, and `db backup` of a
 * 1 GB database used about 0.9 s less CPU beside pg_dump (docs/backups.md).
 */
const WRITE_BATCH_BYTES = 1024 * 1024;

/** Bytes written between background flushes (see `writeDurably`). */
const BACKGROUND_FLUSH_BYTES = 32 * 1024 * 1024;

/** Writes `body` to a new file (never over an existing one) in batches, fsyncs it and closes it. */
async function writeDurably(path: string, body: Readable): Promise<void> {
  const handle = await open(path, 'wx', FILE_MODE);
  // The bytes written so far are flushed to disk in the background now and then, so that the
  // fsync after the last byte has little left to do (for a 244 MB dump it took ~100 ms alone).
  let flushing: Promise<unknown> = Promise.resolve();
  let unflushed = 0;
  try {
    let batch: Buffer[] = [];
    let batched = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      batch.push(chunk);
      batched += chunk.length;
      if (batched < WRITE_BATCH_BYTES) continue;
      await writeAll(handle, batch, batched);
      unflushed += batched;
      batch = [];
      batched = 0;
      if (unflushed >= BACKGROUND_FLUSH_BYTES) {
        await flushing;
        // Its own failure is the final sync's to report.
        flushing = handle.datasync().catch(() => undefined);
        unflushed = 0;
      }
    }
    if (batched > 0) await writeAll(handle, batch, batched);
    await flushing;
    await handle.sync();
  } finally {
    await flushing;
    await handle.close();
  }
}

async function writeAll(handle: FileHandle, buffers: Buffer[], total: number): Promise<void> {
  let written = (await handle.writev(buffers)).bytesWritten;
  // A short write (rare on a regular file) leaves the rest to write.
  while (written < total) {
    const rest = Buffer.concat(buffers).subarray(written);
    written += (await handle.write(rest)).bytesWritten;
  }
}
