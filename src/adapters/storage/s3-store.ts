/**
 * ObjectStore on S3 or any S3-compatible store (`s3://bucket/prefix`), via AWS SDK v3.
 *
 * Uploads stream through our own multipart upload (s3-multipart.ts), which copies the body into
 * `queueSize + 1` part buffers allocated once per upload and reused, so its memory does not wait
 * for the garbage collector. S3 itself never shows an incomplete multipart upload as an object;
 * what can go wrong is a failure reported after S3 committed the object (e.g. the response to
 * CompleteMultipartUpload was lost), so every upload is tagged with a random marker in its
 * metadata and a failed `put` deletes the object under its key only if it carries that marker.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';

import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';

import { ShipError } from '../../errors.ts';
import { loadOnce } from '../load-once.ts';
import { BaseObjectStore } from './base-object-store.ts';
import { callerFailure, meterSource, stopOnAbort } from './metered-stream.ts';
import { compareKeys, validateKey, validatePrefix } from './object-key.ts';
import type { ObjectInfo, PutOptions, PutResult } from './object-store.ts';
import { MIN_PART_SIZE, StreamingUpload } from './s3-multipart.ts';
import { isNotFound, neverReachedBucket, s3ErrorToShipError, type S3Action, type S3ErrorContext } from './s3-errors.ts';
import { redactUrl } from '../../redact.ts';
import type { S3Target } from './storage-url.ts';

export interface S3Options {
  /** An S3-compatible endpoint such as "http://127.0.0.1:9000" (S3_ENDPOINT). Omit for AWS. */
  readonly endpoint?: string;
  /** Address buckets as `endpoint/bucket` rather than `bucket.endpoint` (S3_FORCE_PATH_STYLE); most S3-compatible stores need it. */
  readonly forcePathStyle?: boolean;
  /** Defaults to the SDK's chain (AWS_REGION, profile), or "us-east-1" when an endpoint is given. */
  readonly region?: string;
  /** Explicit credentials; without them the SDK's standard chain (environment, profile, IAM role) is used. */
  readonly accessKeyId?: string;
  readonly secretAccessKey?: string;
  readonly sessionToken?: string;
  /** Attempts per request including the first, with the SDK's backoff between them. Default 3. */
  readonly maxAttempts?: number;
  /** Milliseconds to wait for a TCP connection. Default 5000. */
  readonly connectTimeoutMs?: number;
  /**
   * Milliseconds a socket may sit idle before the request fails. Default none: a download being
   * read slowly (pg_restore under load) must not be cut off.
   */
  readonly socketTimeoutMs?: number;
  /**
   * Multipart part size in bytes, at least 5 MiB. Default 8 MiB. It doubles every 2,000 parts to
   * stay within S3's 10,000, which allows objects up to ~484 GiB at the default.
   */
  readonly partSize?: number;
  /**
   * Parts uploaded in parallel. Each is a buffer of partSize bytes, and one more part is being
   * filled meanwhile, so an upload holds partSize × (queueSize + 1): 24 MiB at the default of 2.
   * Two parts in flight keep up with a pg_dump stream (tens of MB/s) (bench/backup.ts).
   */
  readonly queueSize?: number;
  /** Keys per ListObjectsV2 page, at most 1000 (the default); smaller values exist for tests. */
  readonly listPageSize?: number;
}

const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const DEFAULT_QUEUE_SIZE = 2;
/** S3 lower-cases user metadata names. */
const UPLOAD_MARKER = 'shipshape-upload-id';

export class S3ObjectStore extends BaseObjectStore {
  readonly location: string;
  /** The SDK and the client, loaded at the first request (the SDK costs a third of a second to import). */
  readonly #sdk: () => Promise<{ client: S3Client; s3: typeof import('@aws-sdk/client-s3') }>;
  #client: S3Client | undefined;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #context: S3ErrorContext;
  readonly #partSize: number;
  readonly #queueSize: number;
  readonly #listPageSize: number;

  constructor(target: S3Target, options: S3Options, settingName: string) {
    super();
    this.location = target.location;
    this.#bucket = target.bucket;
    this.#prefix = target.prefix;

    const credentials = resolveCredentials(target, options);
    const endpoint = options.endpoint === undefined ? undefined : checkEndpoint(options.endpoint);
    const region = options.region ?? (endpoint === undefined ? undefined : 'us-east-1');
    this.#partSize = Math.max(MIN_PART_SIZE, options.partSize ?? DEFAULT_PART_SIZE);
    this.#queueSize = Math.max(1, options.queueSize ?? DEFAULT_QUEUE_SIZE);
    this.#listPageSize = Math.min(1000, Math.max(1, options.listPageSize ?? 1000));
    this.#context = {
      location: target.location,
      bucket: target.bucket,
      endpoint: endpoint === undefined ? 'AWS S3' : redactUrl(endpoint),
      region,
      settingName,
      secrets: [credentials?.secretAccessKey, credentials?.sessionToken].filter((value) => value !== undefined),
    };
    const config: S3ClientConfig = {
      region,
      endpoint,
      forcePathStyle: options.forcePathStyle,
      credentials,
      maxAttempts: options.maxAttempts ?? 3,
      requestHandler: { connectionTimeout: options.connectTimeoutMs ?? 5000, requestTimeout: options.socketTimeoutMs },
      // Since SDK 3.729 uploads carry CRC32 checksums by default, which many S3-compatible stores
      // reject or mangle; our own SHA-256 covers integrity, so only send them where AWS requires.
      ...(endpoint === undefined ? {} : { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }),
    };
    this.#sdk = loadOnce(async () => {
      const s3 = await import('@aws-sdk/client-s3');
      this.#client = new s3.S3Client(config);
      return { client: this.#client, s3 };
    });
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<PutResult> {
    const metered = meterSource(body, options.onProgress);
    const unhookAbort = stopOnAbort(options.signal, metered);
    const marker = randomUUID();
    let upload: StreamingUpload | undefined;
    let objectKey: string | undefined;
    try {
      objectKey = this.#objectKey(key);
      options.signal?.throwIfAborted();
      const { client, s3 } = await this.#sdk();
      upload = new StreamingUpload({
        client,
        s3,
        bucket: this.#bucket,
        key: objectKey,
        contentType: options.contentType,
        metadata: { [UPLOAD_MARKER]: marker },
        partSize: this.#partSize,
        queueSize: this.#queueSize,
      });
      await upload.send(metered.body, options.signal);
      return { key, ...metered.digest() };
    } catch (error) {
      metered.stop();
      const cleanup =
        upload === undefined || objectKey === undefined
          ? { strayObjectLeft: false, uploadLeft: undefined }
          : await this.#cleanUpFailedUpload(objectKey, upload.uploadLeftOpen, marker, error);
      if (cleanup.strayObjectLeft) {
        throw new ShipError(
          'SHIP_ERR_STORAGE_WRITE_FAILED',
          `Storing \`${key}\` in ${this.location} failed, yet S3 kept an object under that key and it could not be removed. ` +
            `Delete \`${key}\` from ${this.location} by hand; do not rely on it.`,
          { cause: error, details: { key, location: this.location } },
        );
      }
      const fromCaller = callerFailure(metered, options.signal);
      if (fromCaller !== undefined) throw fromCaller.error;
      // Parts of an upload we could not abort are invisible and cost only storage; a bucket
      // lifecycle rule with AbortIncompleteMultipartUpload removes them.
      throw this.#error(error, 'write', key, { incompleteMultipartUploadId: cleanup.uploadLeft });
    } finally {
      unhookAbort();
    }
  }

  async get(key: string): Promise<Readable> {
    const objectKey = this.#objectKey(key);
    try {
      const { client, s3 } = await this.#sdk();
      const output = await client.send(new s3.GetObjectCommand({ Bucket: this.#bucket, Key: objectKey }));
      if (output.Body instanceof Readable) return output.Body;
      throw new ShipError('SHIP_ERR_STORAGE_UNAVAILABLE', `S3 answered a read of \`${key}\` in ${this.location} without a body. Try again.`);
    } catch (error) {
      if (errorIsNoSuchKey(error)) throw this.#notFound(key);
      throw this.#error(error, 'read', key);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const objectKey = this.#objectKey(key);
    try {
      const { client, s3 } = await this.#sdk();
      const output = await client.send(new s3.HeadObjectCommand({ Bucket: this.#bucket, Key: objectKey }));
      return { key, bytes: output.ContentLength ?? 0, modifiedAt: output.LastModified ?? new Date(0) };
    } catch (error) {
      if (!isNotFound(error)) throw this.#error(error, 'read', key);
    }
    // A HEAD has no body, so S3 answers a plain 404 for a missing bucket as well as for a missing
    // key; "no such backup" must not hide "no such bucket".
    await this.#assertBucketExists(key);
    return undefined;
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    validatePrefix(prefix);
    const base = this.#prefix === '' ? '' : `${this.#prefix}/`;
    const found: ObjectInfo[] = [];
    let continuationToken: string | undefined;
    do {
      let page;
      try {
        const { client, s3 } = await this.#sdk();
        page = await client.send(
          new s3.ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: `${base}${prefix}`,
            ContinuationToken: continuationToken,
            MaxKeys: this.#listPageSize,
          }),
        );
      } catch (error) {
        throw this.#error(error, 'list', prefix === '' ? undefined : `${prefix}*`);
      }
      for (const entry of page.Contents ?? []) {
        if (entry.Key === undefined || !entry.Key.startsWith(base)) continue;
        found.push({ key: entry.Key.slice(base.length), bytes: entry.Size ?? 0, modifiedAt: entry.LastModified ?? new Date(0) });
      }
      continuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      if (page.IsTruncated === true && continuationToken === undefined) {
        throw new ShipError(
          'SHIP_ERR_STORAGE_UNAVAILABLE',
          `Listing ${this.location} stopped: the store said there were more keys but gave no continuation token. ` +
            'The S3-compatible store may not support ListObjectsV2 properly.',
        );
      }
    } while (continuationToken !== undefined);
    return found.sort((a, b) => compareKeys(a.key, b.key));
  }

  async delete(key: string): Promise<void> {
    const objectKey = this.#objectKey(key);
    try {
      const { client, s3 } = await this.#sdk();
      await client.send(new s3.DeleteObjectCommand({ Bucket: this.#bucket, Key: objectKey }));
    } catch (error) {
      if (isNotFound(error) && !errorIsNoSuchBucket(error)) return;
      throw this.#error(error, 'delete', key);
    }
  }

  override close(): void {
    this.#client?.destroy();
  }

  #objectKey(key: string): string {
    validateKey(key);
    return this.#prefix === '' ? key : `${this.#prefix}/${key}`;
  }

  /**
   * After a failed upload (whose multipart upload the upload itself aborted; `uploadLeft` names
   * one it could not): makes sure no object of ours sits under the key. Returns what could not
   * be cleaned up.
   */
  async #cleanUpFailedUpload(
    objectKey: string,
    uploadLeft: string | undefined,
    marker: string,
    failure: unknown,
  ): Promise<{ strayObjectLeft: boolean; uploadLeft: string | undefined }> {
    if (neverReachedBucket(failure)) return { strayObjectLeft: false, uploadLeft };
    let marked: boolean;
    try {
      const { client, s3 } = await this.#sdk();
      const head = await client.send(new s3.HeadObjectCommand({ Bucket: this.#bucket, Key: objectKey }));
      marked = head.Metadata?.[UPLOAD_MARKER] === marker;
    } catch {
      // 404: nothing under the key. Anything else: the store is failing and we cannot tell;
      // the original error already says so.
      return { strayObjectLeft: false, uploadLeft };
    }
    // An object without our marker is someone else's (or the previous version): not ours to delete.
    if (!marked) return { strayObjectLeft: false, uploadLeft };
    try {
      const { client, s3 } = await this.#sdk();
      await client.send(new s3.DeleteObjectCommand({ Bucket: this.#bucket, Key: objectKey }));
      return { strayObjectLeft: false, uploadLeft };
    } catch {
      return { strayObjectLeft: true, uploadLeft };
    }
  }

  async #assertBucketExists(key: string): Promise<void> {
    try {
      const { client, s3 } = await this.#sdk();
      await client.send(new s3.HeadBucketCommand({ Bucket: this.#bucket }));
    } catch (error) {
      if (isNotFound(error)) {
        throw new ShipError(
          'SHIP_ERR_STORAGE_UNAVAILABLE',
          `Bucket \`${this.#bucket}\` does not exist at ${this.#context.endpoint}. Create it, or fix ${this.#context.settingName}.`,
          { cause: error, details: { key, location: this.location } },
        );
      }
      throw this.#error(error, 'read', key);
    }
  }

  #notFound(key: string): ShipError {
    return new ShipError('SHIP_ERR_STORAGE_NOT_FOUND', `There is no object \`${key}\` in ${this.location}. Check the name, or list what is stored there.`, {
      details: { key, location: this.location },
    });
  }

  #error(error: unknown, action: S3Action, key: string | undefined, extraDetails: Record<string, unknown> = {}): ShipError {
    return s3ErrorToShipError(error, action, key, this.#context, extraDetails);
  }
}

function errorIsNoSuchKey(error: unknown): boolean {
  return error instanceof Error && error.name === 'NoSuchKey';
}

function errorIsNoSuchBucket(error: unknown): boolean {
  return error instanceof Error && error.name === 'NoSuchBucket';
}

function resolveCredentials(target: S3Target, options: S3Options): { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined {
  const { accessKeyId, secretAccessKey, sessionToken } = options;
  if (accessKeyId !== undefined || secretAccessKey !== undefined) {
    if (accessKeyId === undefined || secretAccessKey === undefined || accessKeyId === '' || secretAccessKey === '') {
      throw new ShipError(
        'SHIP_ERR_CONFIG',
        'S3 credentials are incomplete: give both an access key ID and a secret access key, or neither to use the standard AWS chain.',
      );
    }
    return { accessKeyId, secretAccessKey, sessionToken };
  }
  return target.credentials;
}

function checkEndpoint(endpoint: string): string {
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new ShipError(
      'SHIP_ERR_CONFIG',
      `S3 endpoint "${redactUrl(endpoint)}" is not an http(s) URL. Set S3_ENDPOINT to e.g. http://127.0.0.1:9000, or leave it unset for AWS.`,
    );
  }
  return endpoint;
}
