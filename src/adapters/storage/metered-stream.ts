/**
 * Counts and hashes a caller's stream on its way into a backend, and keeps the caller's failures
 * apart from the backend's.
 *
 * The source is `pipe`d rather than `pipeline`d on purpose: pipeline() destroys every stream with
 * the first error, so a backend failure would surface as an 'error' on the source too and we could
 * no longer tell "pg_dump failed" from "the disk is full". Here the source only ever sees
 * `destroy()` without an error from us, so any 'error' it emits is its own.
 */
import { createHash } from 'node:crypto';
import { type Readable, Transform, type TransformCallback } from 'node:stream';

import { ShipError } from '../../errors.ts';

export interface MeteredSource {
  /** The stream a backend consumes: the source's bytes, counted and hashed. */
  readonly body: Readable;
  /** The caller's own failure — the source's error, or onProgress throwing — if there was one. */
  sourceFailure(): { readonly error: unknown } | undefined;
  /** Byte count and lowercase hex SHA-256 of everything that passed through. */
  digest(): { bytes: number; sha256: string };
  /** Stops reading: destroys the body (with `reason`, if given) and the source (without one). */
  stop(reason?: Error): void;
}

export function meterSource(source: Readable, onProgress?: (bytes: number) => void): MeteredSource {
  const hash = createHash('sha256');
  let bytes = 0;
  let failure: { readonly error: unknown } | undefined;
  let sha256: string | undefined;
  let stopping = false;

  const body = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      hash.update(chunk);
      bytes += chunk.length;
      try {
        onProgress?.(bytes);
      } catch (error) {
        // The caller's callback failed: that fails the put with the caller's own error.
        failure ??= { error };
        callback(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      callback(null, chunk);
    },
  });

  // The body can fail (source error, early close, abort) before a backend has attached to it;
  // the error stays recorded on the stream for pipeline() or the SDK to see, and must not be an
  // uncaught 'error' event meanwhile.
  body.on('error', () => undefined);

  // A persistent listener: a source may emit more than one 'error', and an unheard one would
  // crash the process.
  source.on('error', (error: unknown) => {
    failure ??= { error };
    body.destroy(error instanceof Error ? error : new Error(String(error)));
  });
  // pipe() never ends the body when the source is destroyed early without an error, which
  // would leave the backend waiting forever for the rest.
  source.on('close', () => {
    if (stopping || source.readableEnded || failure !== undefined) return;
    const error = new ShipError(
      'SHIP_ERR_STORAGE_WRITE_FAILED',
      'The stream being stored closed before its end, so it was not stored. Check the process that produces it.',
    );
    failure = { error };
    body.destroy(error);
  });
  source.pipe(body);

  return {
    body,
    sourceFailure: () => failure,
    digest() {
      sha256 ??= hash.digest('hex');
      return { bytes, sha256 };
    },
    stop(reason) {
      stopping = true;
      body.destroy(reason);
      // Destroying an unfinished source matters: a child process writing into it would
      // otherwise block forever on a full pipe instead of getting EPIPE.
      if (!source.destroyed && !source.readableEnded) source.destroy();
    },
  };
}

/** Stops `metered` when `signal` aborts; returns the function that unhooks the listener. */
export function stopOnAbort(signal: AbortSignal | undefined, metered: MeteredSource): () => void {
  if (signal === undefined) return () => undefined;
  const onAbort = (): void => {
    metered.stop(signal.reason instanceof Error ? signal.reason : new DOMException('The operation was aborted', 'AbortError'));
  };
  if (signal.aborted) {
    onAbort();
    return () => undefined;
  }
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

/**
 * When a put fails because of its caller — the source stream failed, or the signal aborted —
 * the error to reject with, unchanged; undefined when the backend itself failed.
 */
export function callerFailure(metered: MeteredSource, signal: AbortSignal | undefined): { readonly error: unknown } | undefined {
  const source = metered.sourceFailure();
  if (source !== undefined) return source;
  if (signal?.aborted === true) return { error: signal.reason };
  return undefined;
}
