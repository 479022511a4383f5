/**
 * A real S3 protocol server for tests: `s3rver` in-process on 127.0.0.1, a random port, a temp
 * folder and a pre-created bucket.
 *
 * s3rver 3.7.1 is old; in front of it sit a few middlewares, each for a stated reason:
 *
 * - ListObjectsV2 paging: s3rver builds continuation tokens with DES, which OpenSSL 3 (Node >= 17,
 *   so our Node 24) no longer provides, so every truncated listing fails with a 500. Its walk
 *   order is also not S3's byte order for keys mixing `/` with lower characters such as `-`. We
 *   answer `list-type=2` ourselves from s3rver's own store, sorted by UTF-8 bytes as S3 does.
 * - AbortMultipartUpload: s3rver answers 405. We implement it (drop the pending upload's parts),
 *   so "a failed upload is aborted" can be asserted with `pendingMultipartUploads()`.
 * - SigV4: s3rver only checks that the access key ID exists and accepts any secret. We verify
 *   the signature per AWS's documented algorithm, so wrong credentials fail as on real S3
 *   (403 SignatureDoesNotMatch / InvalidAccessKeyId) and anonymous requests get 403 AccessDenied.
 *   The payload hash header is taken as given, not checked against the body.
 * - Fault injection: `injectFault()` fails chosen requests before or after s3rver handles them.
 *
 * Buckets are addressed path-style only: give the client `forcePathStyle: true`.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';

import S3rver from 's3rver';

/** s3rver's built-in account: the only access key ID it knows. */
const ACCESS_KEY_ID = 'S3RVER';
const SECRET_ACCESS_KEY = 'S3RVER';
const REGION = 'us-east-1';

export interface FakeS3Fault {
  /** Which requests to fail, e.g. `(r) => r.method === 'POST' && r.query.has('uploadId')`. */
  readonly match: (request: { method: string; bucket: string; key: string; query: URLSearchParams }) => boolean;
  /** 'before': s3rver never sees the request. 'after': s3rver handles it, then the client gets the error. */
  readonly when: 'before' | 'after';
  /** How many matching requests to fail. Default 1. */
  readonly times?: number;
  /** Default 500 InternalError (which the SDK retries). */
  readonly status?: number;
  readonly code?: string;
}

export interface FakeS3 {
  /** e.g. "http://127.0.0.1:40123" */
  readonly endpoint: string;
  /** The pre-created bucket. */
  readonly bucket: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Options for `openObjectStore` (or an S3Client) that reach this server. */
  readonly storageOptions: {
    readonly endpoint: string;
    readonly forcePathStyle: true;
    readonly region: string;
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
  };
  /** Every request received so far, in order (method, bucket, decoded key, query, Content-Length if sent). */
  requests(): ReadonlyArray<{ method: string; bucket: string; key: string; query: URLSearchParams; contentLength: number | undefined }>;
  /** Multipart uploads started and neither completed nor aborted, in `bucket`. */
  pendingMultipartUploads(): Promise<number>;
  /** Makes matching requests fail; see FakeS3Fault. */
  injectFault(fault: FakeS3Fault): void;
  /** Stops the server and removes its folder. */
  close(): Promise<void>;
}

export async function startS3rver(options: { bucket?: string } = {}): Promise<FakeS3> {
  const bucket = options.bucket ?? 'shipshape-test';
  const directory = await mkdtemp(join(tmpdir(), 'shipshape-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    vhostBuckets: false,
    configureBuckets: [{ name: bucket }],
  });
  const faults: Array<FakeS3Fault & { remaining: number }> = [];
  const seen: RequestFacts[] = [];

  const uploadsFolder = (bucketName: string): string => server.store.getResourcePath(bucketName, undefined, 'uploads');

  server.middleware.unshift(async (ctx, next) => {
    const request = describeRequest(ctx.req);
    seen.push(request);
    const fault = faults.find((candidate) => candidate.remaining > 0 && candidate.match(request));
    if (fault !== undefined) fault.remaining -= 1;
    if (fault?.when === 'before') {
      await drain(ctx.req);
      return respondError(ctx, fault.status ?? 500, fault.code ?? 'InternalError', 'Injected fault.');
    }

    const authProblem = checkSignature(ctx.req, request.rawPath, request.rawQuery);
    if (authProblem !== undefined) {
      await drain(ctx.req);
      respondError(ctx, authProblem.status, authProblem.code, authProblem.message);
    } else if (request.bucket !== '' && request.key === '' && ctx.method === 'GET' && request.query.get('list-type') === '2') {
      await listObjectsV2(ctx, server.store, request.bucket, request.query);
    } else if (request.key !== '' && ctx.method === 'DELETE' && request.query.has('uploadId')) {
      await abortMultipartUpload(ctx, server.store, uploadsFolder(request.bucket), request);
    } else {
      await next();
    }

    if (fault?.when === 'after') respondError(ctx, fault.status ?? 500, fault.code ?? 'InternalError', 'Injected fault.');
  });

  const address = await server.run();
  const endpoint = `http://127.0.0.1:${address.port}`;
  return {
    endpoint,
    bucket,
    region: REGION,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    storageOptions: { endpoint, forcePathStyle: true, region: REGION, accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
    requests: () => seen.map(({ method, bucket: name, key, query, contentLength }) => ({ method, bucket: name, key, query, contentLength })),
    async pendingMultipartUploads() {
      try {
        return (await readdir(uploadsFolder(bucket))).length;
      } catch (error) {
        if (errnoOf(error) === 'ENOENT') return 0;
        throw error;
      }
    },
    injectFault(fault) {
      faults.push({ ...fault, remaining: fault.times ?? 1 });
    },
    async close() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

interface RequestFacts {
  readonly method: string;
  readonly bucket: string;
  readonly key: string;
  readonly query: URLSearchParams;
  readonly contentLength: number | undefined;
  readonly rawPath: string;
  readonly rawQuery: string;
}

function describeRequest(req: IncomingMessage): RequestFacts {
  const url = req.url ?? '/';
  const queryStart = url.indexOf('?');
  const rawPath = queryStart === -1 ? url : url.slice(0, queryStart);
  const rawQuery = queryStart === -1 ? '' : url.slice(queryStart + 1);
  const [, bucketPart = '', ...keyParts] = rawPath.split('/');
  return {
    method: req.method ?? 'GET',
    bucket: decodeURIComponent(bucketPart),
    key: keyParts.map((part) => decodeURIComponent(part)).join('/'),
    query: new URLSearchParams(rawQuery),
    contentLength: req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']),
    rawPath,
    rawQuery,
  };
}

function errnoOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
}

/** Reads the request body to its end so the client is not cut off mid-upload by an early answer. */
async function drain(req: IncomingMessage): Promise<void> {
  req.resume();
  await finished(req).catch(() => undefined);
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function respondError(ctx: S3rver.Context, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message><RequestId>fake-s3</RequestId></Error>`;
}

// --- SigV4 (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html) ---

/** RFC 3986 encoding as SigV4 requires: everything but A-Z a-z 0-9 - _ . ~ is percent-encoded. */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(rawQuery: string): string {
  if (rawQuery === '') return '';
  return rawQuery
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const equals = pair.indexOf('=');
      const name = equals === -1 ? pair : pair.slice(0, equals);
      const value = equals === -1 ? '' : pair.slice(equals + 1);
      return [uriEncode(decodeURIComponent(name)), uriEncode(decodeURIComponent(value))] as const;
    })
    .sort(([nameA, valueA], [nameB, valueB]) => (nameA === nameB ? compare(valueA, valueB) : compare(nameA, nameB)))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function checkSignature(req: IncomingMessage, rawPath: string, rawQuery: string): { status: number; code: string; message: string } | undefined {
  const authorization = req.headers.authorization;
  if (authorization === undefined) return { status: 403, code: 'AccessDenied', message: 'Access Denied' };
  const parsed = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
    authorization,
  );
  if (parsed === null) {
    return { status: 400, code: 'AuthorizationHeaderMalformed', message: 'The authorization header is malformed.' };
  }
  const [, accessKeyId = '', date = '', region = '', signedHeaders = '', signature = ''] = parsed;
  if (accessKeyId !== ACCESS_KEY_ID) {
    return { status: 403, code: 'InvalidAccessKeyId', message: 'The AWS Access Key Id you provided does not exist in our records.' };
  }
  if (region !== REGION) {
    return {
      status: 400,
      code: 'AuthorizationHeaderMalformed',
      message: `The authorization header is malformed; the region '${region}' is wrong; expecting '${REGION}'.`,
    };
  }
  const amzDate = req.headers['x-amz-date'];
  const payloadHash = req.headers['x-amz-content-sha256'];
  if (typeof amzDate !== 'string' || typeof payloadHash !== 'string') {
    return { status: 400, code: 'InvalidRequest', message: 'Missing required header for this request: x-amz-date or x-amz-content-sha256.' };
  }
  const headerLines = signedHeaders.split(';').map((name) => {
    const value = req.headers[name];
    const text = Array.isArray(value) ? value.join(',') : (value ?? '');
    return `${name}:${text.trim().replace(/\s+/g, ' ')}\n`;
  });
  const canonicalRequest = [req.method ?? 'GET', rawPath, canonicalQuery(rawQuery), headerLines.join(''), signedHeaders, payloadHash].join('\n');
  const scope = `${date}/${region}/s3/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest, 'utf8').digest('hex')].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${SECRET_ACCESS_KEY}`, date), region), 's3'), 'aws4_request');
  const expected = hmac(signingKey, stringToSign);
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
    return {
      status: 403,
      code: 'SignatureDoesNotMatch',
      message: 'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
    };
  }
  return undefined;
}

// --- ListObjectsV2 (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html) ---

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

async function listObjectsV2(ctx: S3rver.Context, store: S3rver.FilesystemStore, bucket: string, query: URLSearchParams): Promise<void> {
  if ((await store.getBucket(bucket)) === null) {
    return respondError(ctx, 404, 'NoSuchBucket', 'The specified bucket does not exist');
  }
  const prefix = query.get('prefix') ?? '';
  const delimiter = query.get('delimiter') ?? '';
  const maxKeys = Math.min(1000, Number(query.get('max-keys') ?? '1000'));
  if (!Number.isInteger(maxKeys) || maxKeys < 0) {
    return respondError(ctx, 400, 'InvalidArgument', 'Provided max-keys not an integer or within integer range');
  }
  const token = query.get('continuation-token');
  let startAfter = query.get('start-after') ?? '';
  if (token !== null) {
    const decoded = Buffer.from(token, 'base64url').toString('utf8');
    if (!decoded.startsWith('fake-s3:')) return respondError(ctx, 400, 'InvalidArgument', 'The continuation token provided is incorrect');
    startAfter = decoded.slice('fake-s3:'.length);
  }

  // Everything under the prefix, in S3's order; common prefixes count towards max-keys as on S3.
  const { objects } = await store.listObjects(bucket, { prefix });
  const entries = new Map<string, S3rver.StoredObject | undefined>();
  for (const object of objects) {
    const cut = delimiter === '' ? -1 : object.key.indexOf(delimiter, prefix.length);
    if (cut === -1) entries.set(object.key, object);
    else entries.set(object.key.slice(0, cut + delimiter.length), undefined);
  }
  const ordered = [...entries.keys()].sort(byteOrder).filter((name) => byteOrder(name, startAfter) > 0);
  const page = ordered.slice(0, maxKeys);
  const truncated = ordered.length > page.length;
  const lastOnPage = page.at(-1);

  const parts = [
    '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
    `<Name>${escapeXml(bucket)}</Name><Prefix>${escapeXml(prefix)}</Prefix>`,
    `<KeyCount>${page.length}</KeyCount><MaxKeys>${maxKeys}</MaxKeys><IsTruncated>${truncated}</IsTruncated>`,
  ];
  if (delimiter !== '') parts.push(`<Delimiter>${escapeXml(delimiter)}</Delimiter>`);
  if (token !== null) parts.push(`<ContinuationToken>${escapeXml(token)}</ContinuationToken>`);
  else if (startAfter !== '') parts.push(`<StartAfter>${escapeXml(startAfter)}</StartAfter>`);
  if (truncated && lastOnPage !== undefined) {
    parts.push(`<NextContinuationToken>${Buffer.from(`fake-s3:${lastOnPage}`, 'utf8').toString('base64url')}</NextContinuationToken>`);
  }
  for (const name of page) {
    const object = entries.get(name);
    if (object === undefined) {
      parts.push(`<CommonPrefixes><Prefix>${escapeXml(name)}</Prefix></CommonPrefixes>`);
    } else {
      parts.push(
        `<Contents><Key>${escapeXml(name)}</Key><LastModified>${object.lastModifiedDate.toISOString()}</LastModified>` +
          `<ETag>${escapeXml(object.metadata.etag ?? '')}</ETag><Size>${object.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
      );
    }
  }
  parts.push('</ListBucketResult>');
  ctx.status = 200;
  ctx.type = 'application/xml';
  ctx.body = parts.join('');
}

// --- AbortMultipartUpload (https://docs.aws.amazon.com/AmazonS3/latest/API/API_AbortMultipartUpload.html) ---

async function abortMultipartUpload(ctx: S3rver.Context, store: S3rver.FilesystemStore, uploadsFolder: string, request: RequestFacts): Promise<void> {
  if ((await store.getBucket(request.bucket)) === null) {
    return respondError(ctx, 404, 'NoSuchBucket', 'The specified bucket does not exist');
  }
  const uploadId = request.query.get('uploadId') ?? '';
  const noSuchUpload = (): void =>
    respondError(
      ctx,
      404,
      'NoSuchUpload',
      'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
    );
  // s3rver's upload IDs are hex; anything else could walk out of the uploads folder.
  if (!/^[0-9a-f]+$/.test(uploadId)) return noSuchUpload();
  const folder = join(uploadsFolder, uploadId);
  let storedKey: string;
  try {
    storedKey = await readFile(join(folder, 'key'), 'utf8');
  } catch {
    return noSuchUpload();
  }
  if (storedKey !== request.key) return noSuchUpload();
  await rm(folder, { recursive: true, force: true });
  ctx.status = 204;
  ctx.body = null;
}
