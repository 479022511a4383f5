// The parts of s3rver 3.7.1 (which ships no types) that test/fakes/s3.ts uses.
declare module 's3rver' {
  import type { IncomingMessage } from 'node:http';
  import type { AddressInfo } from 'node:net';

  namespace S3rver {
    interface Options {
      address?: string;
      port?: number;
      silent?: boolean;
      directory?: string;
      resetOnClose?: boolean;
      allowMismatchedSignatures?: boolean;
      vhostBuckets?: boolean;
      configureBuckets?: Array<{ name: string }>;
    }

    /** The subset of a Koa context the fake's middleware touches. */
    interface Context {
      readonly req: IncomingMessage;
      readonly method: string;
      status: number;
      body: unknown;
      type: string;
    }

    type Middleware = (ctx: Context, next: () => Promise<void>) => Promise<void>;

    interface StoredObject {
      readonly key: string;
      readonly size: number;
      readonly lastModifiedDate: Date;
      readonly metadata: Readonly<Record<string, string | undefined>>;
    }

    interface FilesystemStore {
      getResourcePath(bucket: string, key: string | undefined, resource: string): string;
      getBucket(bucket: string): Promise<object | null>;
      listObjects(
        bucket: string,
        options: { prefix?: string; startAfter?: string; maxKeys?: number; delimiter?: string },
      ): Promise<{ objects: StoredObject[]; commonPrefixes: string[]; isTruncated: boolean }>;
    }
  }

  class S3rver {
    constructor(options: S3rver.Options);
    /** Koa's middleware array; composed when the server starts listening. */
    readonly middleware: S3rver.Middleware[];
    readonly store: S3rver.FilesystemStore;
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }

  export = S3rver;
}
