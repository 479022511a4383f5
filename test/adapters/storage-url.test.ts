import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ShipError } from '../../src/errors.ts';
import { openObjectStore, parseStorageUrl, redactUrl, validateKey, validatePrefix } from '../../src/adapters/storage/index.ts';

function shipErrorWith(code: string, check: (message: string) => void = () => undefined) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof ShipError, `expected a ShipError, got ${String(error)}`);
    assert.equal(error.code, code);
    check(error.message);
    return true;
  };
}

describe('storage URLs', () => {
  it('accepts file:///abs/path and shows it as a file URL', () => {
    const target = parseStorageUrl('file:///var/lib/shipshape/backups/');
    assert.deepEqual(target, { kind: 'file', root: '/var/lib/shipshape/backups', location: 'file:///var/lib/shipshape/backups' });
    assert.equal(openObjectStore('file:///srv/backups').location, 'file:///srv/backups');
  });

  it('accepts s3://bucket/prefix, with or without a prefix', () => {
    assert.deepEqual(parseStorageUrl('s3://my-bucket/shipshape/backups/'), {
      kind: 's3',
      bucket: 'my-bucket',
      prefix: 'shipshape/backups',
      location: 's3://my-bucket/shipshape/backups',
    });
    assert.deepEqual(parseStorageUrl('s3://my-bucket'), { kind: 's3', bucket: 'my-bucket', prefix: '', location: 's3://my-bucket' });
  });

  it('takes credentials written into an s3 URL but never shows them in the location', () => {
    const target = parseStorageUrl('s3://AKIAEXAMPLE:s3cr%2Ft-value@my-bucket/p');
    assert.equal(target.kind, 's3');
    assert.equal(target.location, 's3://my-bucket/p');
    if (target.kind === 's3') assert.deepEqual(target.credentials, { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 's3cr/t-value' });
    const store = openObjectStore('s3://AKIAEXAMPLE:s3cr%2Ft-value@my-bucket/p', { endpoint: 'http://127.0.0.1:1' });
    assert.equal(store.location, 's3://my-bucket/p');
    store.close();
  });

  const invalid: Array<[string, string, RegExp]> = [
    ['an unknown scheme', 'ftp://host/backups', /unsupported scheme `ftp:`/],
    ['an empty value', '', /is empty/],
    ['no scheme', 'backups', /has no scheme/],
    ['a bare absolute path', '/var/backups', /did you mean file:\/\/\/var\/backups/],
    ['a relative file path as host', 'file://backups/daily', /absolute folder/],
    ['a relative file path without slashes', 'file:backups', /absolute folder/],
    ['an s3 URL without a bucket', 's3://', /has no bucket/],
    ['an s3 URL with only a path', 's3:///prefix', /has no bucket/],
    ['an s3 URL with a port', 's3://bucket:9000/prefix', /S3_ENDPOINT/],
    ['an s3 prefix with an empty segment', 's3://bucket/a//b', /invalid prefix/],
    ['an s3 prefix with ..', 's3://bucket/a/../b', /invalid prefix/],
    ['an s3 URL with a query', 's3://bucket/p?region=eu-west-1', /query/],
    ['half the credentials', 's3://AKIAEXAMPLE@bucket/p', /incomplete credentials/],
  ];
  for (const [what, url, pattern] of invalid) {
    it(`rejects ${what} with SHIP_ERR_STORAGE_URL_INVALID and a valid example`, () => {
      assert.throws(
        () => openObjectStore(url),
        shipErrorWith('SHIP_ERR_STORAGE_URL_INVALID', (message) => {
          assert.match(message, pattern);
          assert.match(message, /file:\/\/\/var\/lib\/shipshape\/backups or s3:\/\/my-bucket\/shipshape\/backups/);
        }),
      );
    });
  }

  it('names the setting to fix when told which one it is', () => {
    assert.throws(
      () => openObjectStore('gs://bucket', { settingName: 'BACKUP_STORAGE_URL' }),
      shipErrorWith('SHIP_ERR_STORAGE_URL_INVALID', (message) => assert.match(message, /^BACKUP_STORAGE_URL "gs:\/\/bucket"/)),
    );
  });

  it('never echoes a secret from an invalid URL, even one containing a slash', () => {
    for (const url of ['s3://AKIAEXAMPLE:abc/def+SECRET@my bucket/p', 'ftp://user:hunter2secret@host/x']) {
      assert.throws(
        () => openObjectStore(url),
        shipErrorWith('SHIP_ERR_STORAGE_URL_INVALID', (message) => {
          assert.doesNotMatch(message, /SECRET|hunter2secret|def\+/);
          assert.match(message, /:\/\/\S*\[redacted\]@/);
        }),
      );
    }
    assert.equal(redactUrl('see http://u:p@host:9000/x and s3://k:s@b/p'), 'see http://u:[redacted]@host:9000/x and s3://k:[redacted]@b/p');
  });

  it('rejects an S3 endpoint that is not an http(s) URL, and incomplete explicit credentials', () => {
    assert.throws(
      () => openObjectStore('s3://bucket', { endpoint: 'ftp://127.0.0.1' }),
      shipErrorWith('SHIP_ERR_CONFIG', (m) => assert.match(m, /S3_ENDPOINT/)),
    );
    assert.throws(() => openObjectStore('s3://bucket', { endpoint: 'http://127.0.0.1:1', accessKeyId: 'AKIAEXAMPLE' }), shipErrorWith('SHIP_ERR_CONFIG'));
  });
});

describe('object keys', () => {
  it('accepts relative slash-separated keys', () => {
    assert.deepEqual(validateKey('backups/b-20250131/dump.sql'), ['backups', 'b-20250131', 'dump.sql']);
    assert.deepEqual(validateKey('.shipshape-probe-1'), ['.shipshape-probe-1']);
  });

  const badKeys: Array<[string, string]> = [
    ['empty', ''],
    ['absolute', '/etc/passwd'],
    ['a .. segment', 'backups/../../etc/passwd'],
    ['a . segment', 'backups/./x'],
    ['an empty segment', 'backups//x'],
    ['a trailing slash', 'backups/'],
    ['a NUL byte', 'back\u0000ups'],
    ['a backslash', 'a\\..\\b'],
    ['the reserved temp-file prefix', 'backups/.shipshape-tmp-123'],
    ['an over-long segment', 'x'.repeat(256)],
  ];
  for (const [what, key] of badKeys) {
    it(`rejects a key with ${what} as SHIP_ERR_VALIDATION`, () => {
      assert.throws(() => validateKey(key), shipErrorWith('SHIP_ERR_VALIDATION'));
    });
  }

  it('accepts list prefixes that end inside a segment or with a slash, but not traversal', () => {
    validatePrefix('');
    validatePrefix('backups/');
    validatePrefix('backups/b-2025');
    assert.throws(() => validatePrefix('../x'), shipErrorWith('SHIP_ERR_VALIDATION'));
    assert.throws(() => validatePrefix('/abs'), shipErrorWith('SHIP_ERR_VALIDATION'));
    assert.throws(() => validatePrefix('a//'), shipErrorWith('SHIP_ERR_VALIDATION'));
  });
});
