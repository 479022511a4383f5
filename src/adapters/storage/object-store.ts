/**
 * The contract every storage backend (a local folder, S3 or an S3-compatible store) fulfils.
 *
 * Backups and GDPR export archives go through it, so it is built around two promises:
 * an object is visible under its key only once it is complete, and a `put` that rejects leaves
 * nothing of its own under the key.
 */
import type { Readable } from 'node:stream';

/** What a backend knows about one stored object. */
export interface ObjectInfo {
  /** The key, relative to the store's location. */
  readonly key: string;
  /** Size in bytes. */
  readonly bytes: number;
  /** When the object was last written (S3 keeps whole seconds). */
  readonly modifiedAt: Date;
}

export interface PutOptions {
  /** MIME type, recorded where the backend keeps one (S3). */
  readonly contentType?: string;
  /** Called with the number of bytes read from the source so far, as they stream. */
  readonly onProgress?: (bytes: number) => void;
  /** Aborting stops the upload, cleans up, and rejects `put` with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** The outcome of a completed `put`, measured on the bytes as they streamed through. */
export interface PutResult {
  readonly key: string;
  readonly bytes: number;
  /** Lowercase hex SHA-256 of the stored bytes. */
  readonly sha256: string;
}

export interface ObjectStore {
  /** Human-readable location with any secret removed, e.g. "s3://bucket/prefix" or "file:///var/backups". */
  readonly location: string;

  /**
   * Streams `body` into the object `key`, replacing any object already there once complete.
   * The body is never held in memory whole (S3 buffers at most a few multipart parts).
   *
   * If it rejects, nothing written by this call is visible under `key`, and `body` is destroyed.
   * It rejects with `body`'s own error if `body` failed, with the signal's reason if aborted, and
   * otherwise with a ShipError (SHIP_ERR_STORAGE_UNAVAILABLE, SHIP_ERR_STORAGE_WRITE_FAILED).
   */
  put(key: string, body: Readable, options?: PutOptions): Promise<PutResult>;

  /** `put` for small in-memory content such as manifests. */
  putBuffer(key: string, content: Uint8Array | string, options?: Omit<PutOptions, 'onProgress'>): Promise<PutResult>;

  /** Stores `value` as pretty-printed JSON with content type application/json. */
  putJson(key: string, value: unknown, options?: Pick<PutOptions, 'signal'>): Promise<PutResult>;

  /** Streams the object. Throws SHIP_ERR_STORAGE_NOT_FOUND when there is none under `key`. */
  get(key: string): Promise<Readable>;

  /**
   * Reads a small object whole. Throws SHIP_ERR_STORAGE_NOT_FOUND when absent and
   * SHIP_ERR_VALIDATION when it is larger than `maxBytes` (default 16 MiB) — stream it with `get`.
   */
  getBuffer(key: string, options?: { maxBytes?: number }): Promise<Buffer>;

  /** The object's size and date, or undefined when there is none under `key`. */
  head(key: string): Promise<ObjectInfo | undefined>;

  /** Every object whose key starts with `prefix` ("" for all), ordered by key. Pages through S3 fully. */
  list(prefix: string): Promise<ObjectInfo[]>;

  /** Removes the object. Deleting a key that holds nothing is not an error. */
  delete(key: string): Promise<void>;

  /**
   * Proves the location accepts writes: writes, reads back and deletes a small probe object.
   * Throws a ShipError naming the cause (missing bucket, denied access, unreachable endpoint,
   * read-only folder) otherwise.
   */
  checkWritable(): Promise<void>;

  /** Releases network connections (S3). The store must not be used afterwards. */
  close(): void;
}
