/**
 * Downloading a backup's dump to a local file for restore.
 *
 * A local, seekable file is what lets pg_restore run `--jobs N` (parallel restore reads the
 * archive out of order, which a pipe cannot do). The download is hashed as it arrives and
 * only renamed into place when size and SHA-256 match the manifest; a file already there
 * with the right hash is reused, so a resumed or rolled-back run does not download twice.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ObjectStore } from '../../adapters/storage/index.ts';
import { ShipError } from '../../errors.ts';
import type { BackupManifest } from './manifest.ts';

export interface FetchedDump {
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
  /** The file was already there with the right hash. */
  readonly reused: boolean;
}

/** Where a run keeps its downloaded dumps: STATE_DIR/restore/<run-id>/. */
export function restoreWorkDir(stateDir: string, runId: string): string {
  return path.join(stateDir, 'restore', runId);
}

export function localDumpPath(stateDir: string, runId: string, backupId: string): string {
  return path.join(restoreWorkDir(stateDir, runId), `${backupId}.dump`);
}

export async function fetchDump(
  store: ObjectStore,
  manifest: Pick<BackupManifest, 'id' | 'dump'>,
  file: string,
  options: { signal?: AbortSignal | undefined; onProgress?: ((bytes: number) => void) | undefined } = {},
): Promise<FetchedDump> {
  const expected = manifest.dump;
  if (await matches(file, expected)) return { file, bytes: expected.bytes, sha256: expected.sha256, reused: true };
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const partial = `${file}.partial`;
  const hash = createHash('sha256');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      options.onProgress?.(bytes);
      callback(null, chunk);
    },
  });
  try {
    const body = await store.get(expected.objectKey);
    // Dumps hold personal data: readable by the service's own user only.
    await pipeline(
      body,
      meter,
      createWriteStream(partial, { mode: 0o600, flush: true }),
      ...(options.signal === undefined ? [] : [{ signal: options.signal }]),
    );
    const sha256 = hash.digest('hex');
    if (bytes !== expected.bytes || sha256 !== expected.sha256) {
      throw new ShipError(
        'SHIP_ERR_BACKUP_NOT_VERIFIED',
        `The download of backup ${manifest.id} does not match its manifest (${bytes} bytes, SHA-256 ${sha256.slice(0, 12)}…; expected ${expected.bytes} bytes, ${expected.sha256.slice(0, 12)}…). ` +
          `Verify it with \`shipshape db verify ${manifest.id}\` and choose another backup if it fails.`,
      );
    }
    await rename(partial, file);
    return { file, bytes, sha256, reused: false };
  } finally {
    await rm(partial, { force: true });
  }
}

async function matches(file: string, expected: BackupManifest['dump']): Promise<boolean> {
  const info = await stat(file).catch(() => undefined);
  if (info === undefined || info.size !== expected.bytes) return false;
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), async function* (source: AsyncIterable<Buffer>) {
    for await (const chunk of source) hash.update(chunk);
  });
  return hash.digest('hex') === expected.sha256;
}
