/**
 * The parts of ObjectStore that every backend builds the same way from its primitives.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';

import { ShipError } from '../../errors.ts';
import type { ObjectInfo, ObjectStore, PutOptions, PutResult } from './object-store.ts';

const DEFAULT_MAX_BUFFER_BYTES = 16 * 1024 * 1024;

export abstract class BaseObjectStore implements ObjectStore {
  abstract readonly location: string;
  abstract put(key: string, body: Readable, options?: PutOptions): Promise<PutResult>;
  abstract get(key: string): Promise<Readable>;
  abstract head(key: string): Promise<ObjectInfo | undefined>;
  abstract list(prefix: string): Promise<ObjectInfo[]>;
  abstract delete(key: string): Promise<void>;

  close(): void {
    // Nothing to release by default.
  }

  putBuffer(key: string, content: Uint8Array | string, options: Omit<PutOptions, 'onProgress'> = {}): Promise<PutResult> {
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
    return this.put(key, Readable.from([bytes]), options);
  }

  putJson(key: string, value: unknown, options: Pick<PutOptions, 'signal'> = {}): Promise<PutResult> {
    const text = `${JSON.stringify(value, null, 2)}\n`;
    return this.putBuffer(key, text, { ...options, contentType: 'application/json' });
  }

  async getBuffer(key: string, options: { maxBytes?: number } = {}): Promise<Buffer> {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BUFFER_BYTES;
    const stream = await this.get(key);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of stream) {
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      total += bytes.length;
      if (total > maxBytes) {
        stream.destroy();
        throw new ShipError(
          'SHIP_ERR_VALIDATION',
          `Object \`${key}\` in ${this.location} is larger than ${maxBytes} bytes, too large to read into memory. Stream it instead.`,
        );
      }
      chunks.push(bytes);
    }
    return Buffer.concat(chunks, total);
  }

  async checkWritable(): Promise<void> {
    const key = `.shipshape-probe-${randomUUID()}`;
    const content = Buffer.from(`Shipshape write probe, ${new Date().toISOString()}\n`, 'utf8');
    await this.putBuffer(key, content, { contentType: 'text/plain' });
    let readBack: Buffer;
    try {
      readBack = await this.getBuffer(key, { maxBytes: 64 * 1024 });
    } catch (error) {
      await this.delete(key).catch(() => undefined);
      throw error;
    }
    await this.delete(key);
    if (!readBack.equals(content)) {
      throw new ShipError(
        'SHIP_ERR_STORAGE_WRITE_FAILED',
        `A probe object written to ${this.location} read back different bytes (${readBack.length} instead of ${content.length}). ` +
          'The store is corrupting data; do not keep backups there until that is fixed.',
      );
    }
  }
}
