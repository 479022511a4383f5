/**
 * Streaming a body of unknown length into one S3 object, in memory that does not depend on the
 * garbage collector.
 *
 * Why not `@aws-sdk/lib-storage`'s `Upload`: it gathers each part from the stream's chunks
 * and concatenates them into a new part-sized buffer, so a 1 GB backup allocated ~30 buffers of
 * 8 MiB outside the heap, each freed only when a full garbage collection came round. `db backup`
 * to S3 peaked at 172 MB where the same backup to a folder peaked at 95 MB (bench/backup.ts).
 * Here a part is copied into one of a few buffers allocated once per upload (`queueSize` being
 * sent, one being filled) and the buffer is reused as soon as its part is acknowledged.
 *
 * S3's rules, and what happens at them:
 * - every part but the last is at least 5 MiB; the last may be smaller;
 * - at most 10,000 parts: the part size doubles every 2,000 parts (8 MiB parts up to 15.6 GiB,
 *   then 16 MiB, …, 128 MiB), which reaches ~484 GiB at the default size before the limit, where the
 *   upload fails with a message that says so (dumps that large belong to pgBackRest);
 * - a body shorter than one part goes up in a single PutObject, as lib-storage did;
 * - on any failure the parts in flight are waited for, and the multipart upload is aborted
 *   (otherwise its parts stay, invisible, and billed).
 *
 * Integrity of each part on the wire: the SDK signs a Buffer body with its SHA-256
 * (x-amz-content-sha256), which S3 checks on receipt; on AWS the SDK adds a CRC32 per part
 * too (the default since SDK 3.729, as lib-storage did: the algorithm is declared when the
 * upload is created and each part's checksum is handed back on completion).
 */
import type { CompletedPart, S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';

import { ShipError } from '../../errors.ts';
import { isNotFound } from './s3-errors.ts';

export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PARTS = 10_000;
/** After this many parts of one size, the part size doubles (see the header). */
const PARTS_PER_SIZE = 2_000;
/** S3's ceiling for one part. */
const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;

export interface MultipartTarget {
  readonly client: S3Client;
  readonly s3: typeof import('@aws-sdk/client-s3');
  readonly bucket: string;
  /** The full object key, prefix included. */
  readonly key: string;
  readonly contentType: string | undefined;
  readonly metadata: Record<string, string>;
  /** Bytes per part at the start, at least MIN_PART_SIZE. */
  readonly partSize: number;
  /** Parts sent at once; one more buffer is being filled meanwhile. */
  readonly queueSize: number;
}

/** The size of part `partNumber` (1-based) when parts start at `base` bytes. */
export function partSizeFor(base: number, partNumber: number): number {
  const doublings = Math.floor((partNumber - 1) / PARTS_PER_SIZE);
  return Math.min(MAX_PART_SIZE, base * 2 ** doublings);
}

/** The largest object `base`-sized parts (doubling as above) can hold within MAX_PARTS. */
export function largestObject(base: number): number {
  let total = 0;
  for (let first = 1; first <= MAX_PARTS; first += PARTS_PER_SIZE) total += partSizeFor(base, first) * Math.min(PARTS_PER_SIZE, MAX_PARTS - first + 1);
  return total;
}

/**
 * Buffers for parts, allocated when first needed and then reused: at most `count` exist at
 * any time. A returned buffer of a size no longer asked for is dropped.
 */
class PartBuffers {
  readonly #free: Buffer[] = [];
  #outstanding = 0;
  readonly #count: number;

  constructor(count: number) {
    this.#count = count;
  }

  /** A buffer of exactly `size` bytes; the caller must have one to spare (see `available`). */
  take(size: number): Buffer {
    this.#outstanding += 1;
    const index = this.#free.findIndex((buffer) => buffer.length === size);
    if (index !== -1) return this.#free.splice(index, 1)[0] as Buffer;
    // A different size (the part size grew): drop one stale buffer so the count stays bounded.
    if (this.#outstanding + this.#free.length > this.#count) this.#free.shift();
    // Outside Node's shared pool: a part buffer is long-lived and must not pin a pool slab.
    return Buffer.allocUnsafeSlow(size);
  }

  give(buffer: Buffer): void {
    this.#outstanding -= 1;
    this.#free.push(buffer);
  }
}

/**
 * One streaming upload. `send` resolves once the object is complete in S3. If it rejects, the
 * multipart upload (if one was started) has been aborted, unless `uploadLeftOpen` says otherwise.
 */
export class StreamingUpload {
  readonly #target: MultipartTarget;
  #uploadId: string | undefined;
  #aborted = false;

  constructor(target: MultipartTarget) {
    if (target.partSize < MIN_PART_SIZE) throw new ShipError('SHIP_ERR_CONFIG', `S3 parts must be at least ${MIN_PART_SIZE} bytes (5 MiB).`);
    this.#target = target;
  }

  /** A multipart upload that was started and could not be aborted after a failure, if any. */
  get uploadLeftOpen(): string | undefined {
    return this.#aborted ? undefined : this.#uploadId;
  }

  /**
   * Reads `body` to its end and stores it. A part that fails destroys `body` with its error, and
   * the parts in flight are let finish (a part cancelled half-sent can still land after the
   * abort on some stores) before the upload is aborted. `signal` cancels the requests in flight
   * (the caller destroys `body` on abort).
   */
  async send(body: Readable, signal?: AbortSignal): Promise<void> {
    const { partSize, queueSize } = this.#target;
    const buffers = new PartBuffers(queueSize + 1);
    const requestSignal = signal ?? new AbortController().signal;
    const inFlight = new Set<Promise<void>>();
    const completed: CompletedPart[] = [];
    let failure: { readonly error: unknown } | undefined;
    let partNumber = 0;

    const sendPart = (buffer: Buffer, length: number, uploadId: string): void => {
      partNumber += 1;
      if (partNumber > MAX_PARTS) throw this.#tooLarge();
      const number = partNumber;
      const sending = this.#uploadPart(uploadId, number, buffer.subarray(0, length), requestSignal)
        .then((part) => void completed.push(part))
        .catch((error: unknown) => {
          if (failure === undefined) {
            failure = { error };
            body.destroy(error instanceof Error ? error : new Error(String(error)));
          }
        })
        .finally(() => {
          buffers.give(buffer);
          inFlight.delete(sending);
        });
      inFlight.add(sending);
    };

    // Until the body outgrows one part its chunks are only kept, so a small object (a manifest,
    // a probe) costs no part buffer and goes up in one PutObject.
    const head: Buffer[] = [];
    let headBytes = 0;
    let current: Buffer | undefined;
    let filled = 0;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (current === undefined) {
          if (headBytes + chunk.length < partSize) {
            head.push(chunk);
            headBytes += chunk.length;
            continue;
          }
          current = buffers.take(partSizeFor(partSize, 1));
          for (const kept of head) filled += kept.copy(current, filled);
          head.length = 0;
        }
        let offset = 0;
        while (offset < chunk.length) {
          const copied = chunk.copy(current, filled, offset);
          filled += copied;
          offset += copied;
          if (filled < current.length) continue;
          // A full part, and more may follow: it goes up as part of a multipart upload.
          const uploadId = await this.#started(requestSignal);
          while (inFlight.size >= queueSize) await Promise.race(inFlight);
          if (failure !== undefined) throw failure.error;
          sendPart(current, filled, uploadId);
          current = buffers.take(partSizeFor(partSize, partNumber + 1));
          filled = 0;
        }
      }
      if (current === undefined) {
        // Everything fit in one part: a single PutObject, no multipart upload.
        await this.#putWhole(Buffer.concat(head, headBytes), requestSignal);
        return;
      }
      // A part buffer exists only once a full part went up, so the multipart upload is started.
      const uploadId = await this.#started(requestSignal);
      if (filled > 0) sendPart(current, filled, uploadId);
      await Promise.all(inFlight);
      if (failure !== undefined) throw failure.error;
      await this.#complete(uploadId, completed, requestSignal);
    } catch (error) {
      const cause = failure?.error ?? error;
      // Parts still in flight could land after an abort and keep the upload alive; wait for them.
      await Promise.allSettled(inFlight);
      await this.#abort();
      throw cause;
    }
  }

  async #started(signal: AbortSignal): Promise<string> {
    if (this.#uploadId !== undefined) return this.#uploadId;
    const { client, s3, bucket, key, contentType, metadata } = this.#target;
    const checksums = await this.#withChecksums();
    const created = await client.send(
      new s3.CreateMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        ContentType: contentType,
        Metadata: metadata,
        ...(checksums ? { ChecksumAlgorithm: 'CRC32' } : {}),
      }),
      { abortSignal: signal },
    );
    if (created.UploadId === undefined) {
      throw new ShipError('SHIP_ERR_STORAGE_UNAVAILABLE', 'S3 started a multipart upload without returning its upload id. Try again.');
    }
    this.#uploadId = created.UploadId;
    return created.UploadId;
  }

  async #uploadPart(uploadId: string, partNumber: number, data: Buffer, signal: AbortSignal): Promise<CompletedPart> {
    const { client, s3, bucket, key } = this.#target;
    const checksums = await this.#withChecksums();
    const output = await client.send(
      new s3.UploadPartCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: partNumber,
        Body: data,
        ContentLength: data.length,
        ...(checksums ? { ChecksumAlgorithm: 'CRC32' } : {}),
      }),
      { abortSignal: signal },
    );
    if (output.ETag === undefined) {
      throw new ShipError('SHIP_ERR_STORAGE_UNAVAILABLE', `S3 accepted part ${partNumber} without an ETag, so the upload cannot be completed. Try again.`);
    }
    return { PartNumber: partNumber, ETag: output.ETag, ...(output.ChecksumCRC32 === undefined ? {} : { ChecksumCRC32: output.ChecksumCRC32 }) };
  }

  async #complete(uploadId: string, parts: CompletedPart[], signal: AbortSignal): Promise<void> {
    const { client, s3, bucket, key } = this.#target;
    parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    await client.send(new s3.CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), {
      abortSignal: signal,
    });
    this.#aborted = true; // completed: nothing is left open
  }

  async #putWhole(data: Buffer, signal: AbortSignal): Promise<void> {
    const { client, s3, bucket, key, contentType, metadata } = this.#target;
    await client.send(
      new s3.PutObjectCommand({ Bucket: bucket, Key: key, Body: data, ContentLength: data.length, ContentType: contentType, Metadata: metadata }),
      {
        abortSignal: signal,
      },
    );
  }

  /** Aborts the multipart upload, if one was started; a failure to do so shows in `uploadLeftOpen`. */
  async #abort(): Promise<void> {
    if (this.#uploadId === undefined || this.#aborted) return;
    const { client, s3, bucket, key } = this.#target;
    try {
      await client.send(new s3.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: this.#uploadId }));
      this.#aborted = true;
    } catch (error) {
      // Already gone (completed after all, or aborted by a lifecycle rule): nothing is left open.
      if (isNotFound(error)) this.#aborted = true;
    }
  }

  /** Whether the client adds checksums to requests that merely support them (AWS's default; off for S3-compatible endpoints here). */
  async #withChecksums(): Promise<boolean> {
    return (await this.#target.client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
  }

  #tooLarge(): ShipError {
    const limit = largestObject(this.#target.partSize);
    return new ShipError(
      'SHIP_ERR_STORAGE_WRITE_FAILED',
      `The object is larger than an S3 multipart upload of ${MAX_PARTS} parts can hold at this part size (${Math.floor(limit / 1024 ** 3)} GiB). ` +
        'Use a larger part size, or for a database this size, physical backups (pgBackRest).',
    );
  }
}
