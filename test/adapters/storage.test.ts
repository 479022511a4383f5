import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import { ShipError } from '../../src/errors.ts';
import { type ObjectStore, openObjectStore, type StorageOptions } from '../../src/adapters/storage/index.ts';
import { largestObject, MAX_PARTS, partSizeFor } from '../../src/adapters/storage/s3-multipart.ts';
import { type FakeS3, startS3rver } from '../fakes/s3.ts';

const MiB = 1024 * 1024;
const BLOCK = randomBytes(MiB);
const CHUNK = 64 * 1024;

/** Deterministic chunks of `total` bytes, varied enough that a lost or reordered chunk changes the hash. */
function* chunks(total: number): Generator<Buffer> {
  for (let offset = 0, index = 0; offset < total; offset += CHUNK, index += 1) {
    const start = (index * 4099) % (BLOCK.length - CHUNK);
    yield BLOCK.subarray(start, start + Math.min(CHUNK, total - offset));
  }
}

function source(total: number): { stream: Readable; sha256: string } {
  const hash = createHash('sha256');
  for (const chunk of chunks(total)) hash.update(chunk);
  return { stream: Readable.from(chunks(total)), sha256: hash.digest('hex') };
}

/** A source that yields `total` bytes and then fails the way a crashing pg_dump pipe would. */
function failingSource(total: number, error: Error): Readable {
  return Readable.from(
    (async function* () {
      yield* chunks(total);
      throw error;
    })(),
  );
}

async function digest(stream: Readable): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    hash.update(buffer);
    bytes += buffer.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

function shipError(code: string, check: (error: ShipError) => void = () => undefined) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof ShipError, `expected a ShipError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    check(error);
    return true;
  };
}

interface Backend {
  readonly name: string;
  /** The store under test, rooted at `prefix` (a folder or key prefix). */
  open(prefix: string, options?: StorageOptions): ObjectStore;
  /** Anything a failed put may have left behind: temp files, pending multipart uploads. */
  leftovers(prefix: string): Promise<string[]>;
  /** Backend-specific checks after a put of `bytes` bytes to `key`. */
  afterLargePut(prefix: string, key: string): void;
  /** Backend-specific checks after a put to `key` failed part-way through a large upload. */
  afterFailedLargePut(prefix: string, key: string): void;
  close(): Promise<void>;
}

async function fileBackend(): Promise<Backend> {
  const root = await mkdtemp(join(tmpdir(), 'shipshape-storage-'));
  const walk = async (folder: string): Promise<string[]> => {
    const entries = await readdir(folder, { withFileTypes: true }).catch(() => []);
    const names: string[] = [];
    for (const entry of entries) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) names.push(...(await walk(path)));
      else names.push(path);
    }
    return names;
  };
  return {
    name: 'file://',
    open: (prefix, options = {}) => openObjectStore(`file://${join(root, prefix)}`, options),
    leftovers: async (prefix) => (await walk(join(root, prefix))).filter((path) => path.includes('.shipshape-tmp-')),
    afterLargePut: () => undefined,
    afterFailedLargePut: () => undefined,
    close: () => rm(root, { recursive: true, force: true }),
  };
}

async function s3Backend(fake: FakeS3): Promise<Backend> {
  const opened: ObjectStore[] = [];
  return {
    name: 's3://',
    open(prefix, options = {}) {
      // A page size of 2 makes every multi-key listing page through ListObjectsV2.
      const store = openObjectStore(`s3://${fake.bucket}/${prefix}`, { ...fake.storageOptions, listPageSize: 2, ...options });
      opened.push(store);
      return store;
    },
    leftovers: async () => ((await fake.pendingMultipartUploads()) === 0 ? [] : ['a pending multipart upload']),
    afterLargePut(prefix, key) {
      const parts = fake.requests().filter((r) => r.method === 'PUT' && r.key === `${prefix}/${key}` && r.query.has('partNumber'));
      assert.ok(parts.length >= 2, `expected a multipart upload, saw ${parts.length} part(s)`);
    },
    afterFailedLargePut(prefix, key) {
      const aborts = fake.requests().filter((r) => r.method === 'DELETE' && r.key === `${prefix}/${key}` && r.query.has('uploadId'));
      assert.equal(aborts.length, 1, 'the multipart upload was aborted');
    },
    async close() {
      for (const store of opened) store.close();
    },
  };
}

let fake: FakeS3;
before(async () => {
  fake = await startS3rver();
});
after(async () => {
  await fake.close();
});

for (const makeBackend of [fileBackend, () => s3Backend(fake)]) {
  describe(`object store contract (${makeBackend === fileBackend ? 'file://' : 's3://'})`, () => {
    let backend: Backend;
    let prefix: string;
    let store: ObjectStore;
    before(async () => {
      backend = await makeBackend();
      prefix = `t-${randomUUID()}`;
      store = backend.open(prefix);
    });
    after(async () => {
      await backend.close();
    });

    it('streams a multi-megabyte object in and out with the right byte count and sha256', async () => {
      const total = 12 * MiB + 123;
      const { stream, sha256 } = source(total);
      let progress = 0;
      const result = await store.put('backups/big.sql', stream, { contentType: 'application/sql', onProgress: (bytes) => (progress = bytes) });
      assert.deepEqual(result, { key: 'backups/big.sql', bytes: total, sha256 });
      assert.equal(progress, total);
      backend.afterLargePut(prefix, 'backups/big.sql');

      const info = await store.head('backups/big.sql');
      assert.ok(info !== undefined);
      assert.equal(info.bytes, total);
      assert.ok(info.modifiedAt instanceof Date);
      assert.deepEqual(await digest(await store.get('backups/big.sql')), { sha256, bytes: total });
    });

    it('lists the objects under a prefix, in S3 key order, paging through all of them', async () => {
      const keys = ['ls/a/1', 'ls/a/2', 'ls/a/3', 'ls/a-b/4', 'ls/ab/5', 'ls/b/6'];
      for (const key of keys) await store.putBuffer(key, key);
      const under = async (p: string): Promise<string[]> => (await store.list(p)).map((o) => o.key);

      assert.deepEqual(await under('ls/a/'), ['ls/a/1', 'ls/a/2', 'ls/a/3']);
      // "-" sorts before "/" in bytes, so "a-b/" lists before "a/" as on S3.
      assert.deepEqual(await under('ls/a'), ['ls/a-b/4', 'ls/a/1', 'ls/a/2', 'ls/a/3', 'ls/ab/5']);
      assert.deepEqual(await under('ls/'), ['ls/a-b/4', 'ls/a/1', 'ls/a/2', 'ls/a/3', 'ls/ab/5', 'ls/b/6']);
      assert.deepEqual(await under('ls/none/'), []);
      const [first] = await store.list('ls/a/1');
      assert.deepEqual({ key: first?.key, bytes: first?.bytes }, { key: 'ls/a/1', bytes: 6 });
    });

    it('reports a missing key as undefined from head and SHIP_ERR_STORAGE_NOT_FOUND from get', async () => {
      assert.equal(await store.head('missing/nothing.sql'), undefined);
      await assert.rejects(
        store.get('missing/nothing.sql'),
        shipError('SHIP_ERR_STORAGE_NOT_FOUND', (e) => assert.match(e.message, /missing\/nothing\.sql/)),
      );
    });

    it('deletes an object, and deleting a missing key is not an error', async () => {
      await store.putBuffer('del/one.txt', 'bye');
      await store.delete('del/one.txt');
      assert.equal(await store.head('del/one.txt'), undefined);
      await assert.rejects(store.get('del/one.txt'), shipError('SHIP_ERR_STORAGE_NOT_FOUND'));
      await store.delete('del/one.txt');
      await store.delete('del/never-existed.txt');
    });

    it('stores and reads back an empty object', async () => {
      const result = await store.put('empty/zero.bin', Readable.from([]));
      assert.deepEqual(result, { key: 'empty/zero.bin', bytes: 0, sha256: createHash('sha256').digest('hex') });
      assert.equal((await store.head('empty/zero.bin'))?.bytes, 0);
      assert.equal((await store.getBuffer('empty/zero.bin')).length, 0);
    });

    it('replaces an existing object whole', async () => {
      await store.putBuffer('replace/x.json', 'version one, longer than the second');
      await store.putBuffer('replace/x.json', 'version two');
      assert.equal((await store.getBuffer('replace/x.json')).toString(), 'version two');
    });

    it('leaves nothing under the key when the source stream fails midway, rejecting with its own error', async () => {
      const crash = new Error('pg_dump exited with code 1');
      await assert.rejects(store.put('fail/dump.sql', failingSource(9 * MiB, crash)), (error) => error === crash);
      assert.equal(await store.head('fail/dump.sql'), undefined);
      assert.deepEqual(await store.list('fail/'), []);
      assert.deepEqual(await backend.leftovers(prefix), []);
      backend.afterFailedLargePut(prefix, 'fail/dump.sql');
    });

    it('leaves nothing under the key when the put is aborted mid-stream', async () => {
      const controller = new AbortController();
      const { stream } = source(20 * MiB);
      const put = store.put('abort/dump.sql', stream, {
        signal: controller.signal,
        onProgress: (bytes) => {
          if (bytes > 9 * MiB) controller.abort();
        },
      });
      await assert.rejects(put, (error) => error === controller.signal.reason);
      assert.ok(stream.destroyed, 'the source is destroyed');
      assert.equal(await store.head('abort/dump.sql'), undefined);
      assert.deepEqual(await backend.leftovers(prefix), []);
      backend.afterFailedLargePut(prefix, 'abort/dump.sql');
    });

    it('does not store a source that closes before its end without an error', async () => {
      const stream = new PassThrough();
      const put = store.put('early/close.sql', stream);
      stream.write(Buffer.alloc(1000, 1));
      stream.destroy();
      await assert.rejects(put, shipError('SHIP_ERR_STORAGE_WRITE_FAILED'));
      assert.equal(await store.head('early/close.sql'), undefined);
      assert.deepEqual(await backend.leftovers(prefix), []);
    });

    it('fails the put with the error its progress callback throws, storing nothing', async () => {
      const oops = new Error('progress sink broke');
      const { stream } = source(2 * MiB);
      const put = store.put('progress/x.sql', stream, {
        onProgress: () => {
          throw oops;
        },
      });
      await assert.rejects(put, (error) => error === oops);
      assert.equal(await store.head('progress/x.sql'), undefined);
      assert.deepEqual(await backend.leftovers(prefix), []);
    });

    it('rejects an invalid key with SHIP_ERR_VALIDATION and destroys the source', async () => {
      const { stream } = source(10);
      await assert.rejects(store.put('../escape.sql', stream), shipError('SHIP_ERR_VALIDATION'));
      assert.ok(stream.destroyed);
      await assert.rejects(store.get('/etc/passwd'), shipError('SHIP_ERR_VALIDATION'));
      await assert.rejects(store.head('a//b'), shipError('SHIP_ERR_VALIDATION'));
      await assert.rejects(store.delete('a/../../b'), shipError('SHIP_ERR_VALIDATION'));
      await assert.rejects(store.list('../'), shipError('SHIP_ERR_VALIDATION'));
    });

    it('round-trips a JSON manifest and refuses to buffer an object over the limit', async () => {
      const manifest = { id: 'b-1', bytes: 42, tables: ['users', 'tasks'] };
      const result = await store.putJson('manifests/b-1.json', manifest);
      const text = (await store.getBuffer('manifests/b-1.json')).toString('utf8');
      assert.deepEqual(JSON.parse(text), manifest);
      assert.equal(result.sha256, createHash('sha256').update(text).digest('hex'));
      await assert.rejects(store.getBuffer('manifests/b-1.json', { maxBytes: 10 }), shipError('SHIP_ERR_VALIDATION'));
    });

    it('proves the location writable and leaves no probe object behind', async () => {
      await store.checkWritable();
      assert.deepEqual(
        (await store.list('')).filter((o) => o.key.startsWith('.shipshape-probe-')),
        [],
      );
    });
  });
}

describe('file:// object store', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'shipshape-storage-file-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('shows an object under its key only once it is completely written', async () => {
    const store = openObjectStore(`file://${root}/atomic`);
    const stream = new PassThrough();
    const put = store.put('backups/slow.sql', stream);
    stream.write(Buffer.alloc(64 * 1024, 7));
    const folder = join(root, 'atomic', 'backups');
    // Wait (bounded by the test timeout) until the write is under way on disk.
    let inFolder: string[] = [];
    while (inFolder.length === 0) {
      await setTimeout(5);
      inFolder = await readdir(folder).catch(() => []);
    }
    assert.equal(inFolder.length, 1);
    assert.match(inFolder[0] ?? '', /^\.shipshape-tmp-/);

    assert.equal(await store.head('backups/slow.sql'), undefined);
    assert.deepEqual(await store.list(''), []);

    stream.end(Buffer.alloc(1000, 8));
    const result = await put;
    assert.equal(result.bytes, 64 * 1024 + 1000);
    assert.deepEqual(await readdir(join(root, 'atomic', 'backups')), ['slow.sql']);
    assert.equal((await store.head('backups/slow.sql'))?.bytes, 64 * 1024 + 1000);
  });

  it('creates the folder on the first write and keeps files readable by their owner only', async () => {
    const store = openObjectStore(`file://${root}/new/nested/folder`);
    await store.putBuffer('exports/user-1.tar', 'personal data');
    const mode = (await stat(join(root, 'new/nested/folder/exports/user-1.tar'))).mode & 0o777;
    assert.equal(mode, 0o600);
  });

  it('lists nothing, rather than failing, before the folder exists', async () => {
    assert.deepEqual(await openObjectStore(`file://${root}/not-yet`).list(''), []);
  });

  it('fails checkWritable clearly when the location is a file, not a folder', async () => {
    await writeFile(join(root, 'a-file'), 'not a folder');
    const store = openObjectStore(`file://${root}/a-file`, { settingName: 'BACKUP_STORAGE_URL' });
    await assert.rejects(
      store.checkWritable(),
      shipError('SHIP_ERR_STORAGE_WRITE_FAILED', (e) => assert.match(e.message, /folder/)),
    );
  });
});

describe('s3:// object store', () => {
  const opened: ObjectStore[] = [];
  const open = (url: string, options: StorageOptions): ObjectStore => {
    const store = openObjectStore(url, options);
    opened.push(store);
    return store;
  };
  after(() => {
    for (const store of opened) store.close();
  });

  it('keeps objects under the URL prefix and lists keys relative to it', async () => {
    const one = open(`s3://${fake.bucket}/p-${randomUUID()}`, fake.storageOptions);
    const other = open(`s3://${fake.bucket}/p-${randomUUID()}`, fake.storageOptions);
    await one.putBuffer('x/y.txt', 'hello');
    assert.deepEqual(
      (await one.list('')).map((o) => o.key),
      ['x/y.txt'],
    );
    assert.deepEqual(await other.list(''), []);
    assert.equal(one.location, `s3://${fake.bucket}/${one.location.split('/').at(-1)}`);
  });

  it('pages through ListObjectsV2 with continuation tokens', async () => {
    const prefix = `page-${randomUUID()}`;
    const store = open(`s3://${fake.bucket}/${prefix}`, { ...fake.storageOptions, listPageSize: 2 });
    for (let i = 0; i < 5; i += 1) await store.putBuffer(`k${i}`, String(i));
    const before = fake.requests().length;
    assert.deepEqual(
      (await store.list('')).map((o) => o.key),
      ['k0', 'k1', 'k2', 'k3', 'k4'],
    );
    const listCalls = fake
      .requests()
      .slice(before)
      .filter((r) => r.query.get('list-type') === '2');
    assert.equal(listCalls.length, 3);
    assert.equal(listCalls.filter((r) => r.query.has('continuation-token')).length, 2);
  });

  it('fails checkWritable against a missing bucket with SHIP_ERR_STORAGE_UNAVAILABLE naming the bucket', async () => {
    const store = open('s3://no-such-bucket/backups', { ...fake.storageOptions, settingName: 'BACKUP_STORAGE_URL' });
    await assert.rejects(
      store.checkWritable(),
      shipError('SHIP_ERR_STORAGE_UNAVAILABLE', (e) => {
        assert.match(e.message, /Bucket `no-such-bucket` does not exist/);
        assert.match(e.message, /BACKUP_STORAGE_URL/);
      }),
    );
  });

  it('reports a missing bucket from head and list instead of "no such object"', async () => {
    const store = open('s3://no-such-bucket/backups', fake.storageOptions);
    await assert.rejects(
      store.head('b-1/manifest.json'),
      shipError('SHIP_ERR_STORAGE_UNAVAILABLE', (e) => assert.match(e.message, /no-such-bucket/)),
    );
    await assert.rejects(store.list(''), shipError('SHIP_ERR_STORAGE_UNAVAILABLE'));
    await assert.rejects(store.get('b-1/manifest.json'), shipError('SHIP_ERR_STORAGE_UNAVAILABLE'));
  });

  it('fails with SHIP_ERR_STORAGE_UNAVAILABLE naming the endpoint when it is unreachable', async () => {
    const listener = createServer();
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const address = listener.address();
    assert.ok(address !== null && typeof address === 'object');
    await new Promise<void>((resolve) => listener.close(() => resolve()));

    const endpoint = `http://127.0.0.1:${address.port}`;
    const store = open(`s3://${fake.bucket}/x`, { ...fake.storageOptions, endpoint, maxAttempts: 2 });
    await assert.rejects(
      store.checkWritable(),
      shipError('SHIP_ERR_STORAGE_UNAVAILABLE', (e) => {
        assert.match(e.message, new RegExp(`Cannot reach the S3 endpoint ${endpoint}`));
        assert.match(e.message, /ECONNREFUSED/);
      }),
    );
  });

  it('fails with SHIP_ERR_STORAGE_UNAVAILABLE on wrong credentials without revealing the secret', async () => {
    const secret = 'wrong-secret-0123456789abcdef';
    const store = open(`s3://${fake.bucket}/x`, { ...fake.storageOptions, secretAccessKey: secret });
    await assert.rejects(
      store.checkWritable(),
      shipError('SHIP_ERR_STORAGE_UNAVAILABLE', (e) => {
        assert.match(e.message, /Access denied .*SignatureDoesNotMatch/);
        assert.ok(!e.message.includes(secret));
        assert.ok(!JSON.stringify(e.details).includes(secret));
      }),
    );
    const unknownKey = open(`s3://${fake.bucket}/x`, { ...fake.storageOptions, accessKeyId: 'AKIAUNKNOWN' });
    await assert.rejects(
      unknownKey.list(''),
      shipError('SHIP_ERR_STORAGE_UNAVAILABLE', (e) => assert.match(e.message, /InvalidAccessKeyId/)),
    );
  });

  it('signs with credentials written into the URL', async () => {
    const { endpoint, forcePathStyle, region } = fake.storageOptions;
    const store = open(`s3://${fake.accessKeyId}:${fake.secretAccessKey}@${fake.bucket}/url-creds`, { endpoint, forcePathStyle, region });
    assert.equal(store.location, `s3://${fake.bucket}/url-creds`);
    await store.checkWritable();
  });

  it('removes an object S3 committed when the upload still reported failure', async () => {
    const prefix = `commit-${randomUUID()}`;
    const store = open(`s3://${fake.bucket}/${prefix}`, { ...fake.storageOptions, maxAttempts: 2 });
    // CompleteMultipartUpload succeeds on the server but the client sees 500s, as when a
    // response is lost: the object exists although the upload failed.
    fake.injectFault({ match: (r) => r.method === 'POST' && r.key === `${prefix}/dump.sql` && r.query.has('uploadId'), when: 'after', times: 2 });
    const { stream } = source(10 * MiB);
    await assert.rejects(
      store.put('dump.sql', stream),
      shipError('SHIP_ERR_STORAGE_UNAVAILABLE', (e) => assert.match(e.message, /HTTP 500/)),
    );
    assert.equal(await store.head('dump.sql'), undefined);
    assert.equal(await fake.pendingMultipartUploads(), 0);
    const deletes = fake.requests().filter((r) => r.method === 'DELETE' && r.key === `${prefix}/dump.sql` && !r.query.has('uploadId'));
    assert.equal(deletes.length, 1, 'the committed object was deleted');
  });

  it('round-trips an object of several parts byte for byte, each part but the last exactly the part size', async () => {
    const prefix = `parts-${randomUUID()}`;
    const partSize = 5 * MiB;
    const store = open(`s3://${fake.bucket}/${prefix}`, { ...fake.storageOptions, partSize });
    const content = randomBytes(3 * partSize + 777_777);
    // Chunks of a size that never divides the part size, so every part is cut inside a chunk.
    const pieces: Buffer[] = [];
    for (let at = 0; at < content.length; at += 100_003) pieces.push(content.subarray(at, at + 100_003));
    const result = await store.put('multi/dump', Readable.from(pieces));
    assert.deepEqual(result, { key: 'multi/dump', bytes: content.length, sha256: createHash('sha256').update(content).digest('hex') });
    assert.ok((await store.getBuffer('multi/dump', { maxBytes: 32 * MiB })).equals(content), 'the stored bytes are the bytes sent');
    const parts = fake.requests().filter((r) => r.method === 'PUT' && r.key === `${prefix}/multi/dump` && r.query.has('partNumber'));
    assert.deepEqual(
      parts.map((r) => [Number(r.query.get('partNumber')), r.contentLength]).sort(([a = 0], [b = 0]) => a - b),
      [
        [1, partSize],
        [2, partSize],
        [3, partSize],
        [4, 777_777],
      ],
    );
    assert.equal(await fake.pendingMultipartUploads(), 0);
  });

  it('sends an object smaller than one part in a single PutObject, without a multipart upload', async () => {
    const prefix = `single-${randomUUID()}`;
    const store = open(`s3://${fake.bucket}/${prefix}`, fake.storageOptions);
    const { stream, sha256 } = source(3 * MiB);
    assert.equal((await store.put('small/dump', stream)).sha256, sha256);
    const requests = fake.requests().filter((r) => r.key === `${prefix}/small/dump`);
    assert.deepEqual(
      requests.map((r) => [r.method, r.query.has('uploads') || r.query.has('uploadId') || r.query.has('partNumber')]),
      [['PUT', false]],
    );
    assert.equal(requests[0]?.contentLength, 3 * MiB);
  });

  it('aborts the multipart upload when a part fails for good, sending no part after the abort and leaving nothing under the key', async () => {
    const prefix = `part-fails-${randomUUID()}`;
    const store = open(`s3://${fake.bucket}/${prefix}`, { ...fake.storageOptions, partSize: 5 * MiB, maxAttempts: 2 });
    // Every attempt at part 3 fails; parts 2 and 4 may be in flight meanwhile.
    fake.injectFault({ match: (r) => r.method === 'PUT' && r.key === `${prefix}/dump` && r.query.get('partNumber') === '3', when: 'before', times: 10 });
    const { stream } = source(30 * MiB);
    await assert.rejects(
      store.put('dump', stream),
      shipError('SHIP_ERR_STORAGE_UNAVAILABLE', (e) => assert.match(e.message, /HTTP 500/)),
    );
    assert.ok(stream.destroyed, 'the source is no longer read');
    const requests = fake.requests().filter((r) => r.key === `${prefix}/dump`);
    const abort = requests.findIndex((r) => r.method === 'DELETE' && r.query.has('uploadId'));
    assert.notEqual(abort, -1, 'the multipart upload was aborted');
    assert.deepEqual(
      requests.slice(abort + 1).filter((r) => r.query.has('partNumber')),
      [],
      'no part went up after the abort',
    );
    assert.equal(await store.head('dump'), undefined);
    assert.equal(await fake.pendingMultipartUploads(), 0);
  });

  it('never deletes an object a failed put did not write', async () => {
    const prefix = `keep-${randomUUID()}`;
    const store = open(`s3://${fake.bucket}/${prefix}`, { ...fake.storageOptions, maxAttempts: 2 });
    await store.putBuffer('manifest.json', 'previous version');
    fake.injectFault({ match: (r) => r.method === 'PUT' && r.key === `${prefix}/manifest.json`, when: 'before', times: 2 });
    await assert.rejects(store.putBuffer('manifest.json', 'new version'), shipError('SHIP_ERR_STORAGE_UNAVAILABLE'));
    assert.equal((await store.getBuffer('manifest.json')).toString(), 'previous version');
  });
});

describe('S3 multipart part sizes', () => {
  it('keep S3’s 10,000-part limit by doubling every 2,000 parts, and say how large an object fits', () => {
    const base = 8 * MiB;
    assert.equal(partSizeFor(base, 1), base);
    assert.equal(partSizeFor(base, 2_000), base);
    assert.equal(partSizeFor(base, 2_001), 2 * base);
    assert.equal(partSizeFor(base, 10_000), 16 * base);
    // 2,000 parts each of 8, 16, 32, 64 and 128 MiB.
    assert.equal(largestObject(base), 2_000 * (8 + 16 + 32 + 64 + 128) * MiB);
    assert.equal(MAX_PARTS, 10_000);
  });
});
