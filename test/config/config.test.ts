/**
 * Configuration: defaults that need no set-up, and one-line errors that name the
 * variable, the problem and a good example — without echoing secrets.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/index.ts';
import type { ShipError } from '../../src/errors.ts';

test('an empty environment gives the embedded defaults', () => {
  const config = loadConfig({}, '/srv/app');
  assert.equal(config.port, 3000);
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.databaseUrl, undefined);
  assert.equal(config.stateDir, path.resolve('/srv/app', '.shipshape'));
  assert.equal(config.backupStorageUrl, 'file:///srv/app/.shipshape/backups');
  assert.equal(config.adminToken, undefined);
  assert.equal(config.apiUrl, 'http://127.0.0.1:3000');
});

test('a bad value names the variable, the problem and a good example', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /^PORT="eighty" is invalid: .*Example of a good value: PORT=3000$/],
    [{ PORT: '70000' }, /^PORT="70000" is invalid/],
    [{ DATABASE_URL: 'mysql://x' }, /^DATABASE_URL=\(hidden\) is invalid: must start with postgres:\/\//],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL="loud" is invalid/],
    [{ BACKUP_STORAGE_URL: 'ftp://x' }, /^BACKUP_STORAGE_URL=\(hidden\) is invalid: must be file:\/\/\/absolute\/path or s3:\/\/bucket\/prefix/],
    [{ S3_FORCE_PATH_STYLE: 'maybe' }, /^S3_FORCE_PATH_STYLE="maybe" is invalid/],
  ];
  for (const [env, message] of cases) {
    assert.throws(
      () => loadConfig(env),
      (error: ShipError) => error.code === 'SHIP_ERR_CONFIG' && message.test(error.message),
      JSON.stringify(env),
    );
  }
});

test('a secret that is wrong is not echoed back', () => {
  assert.throws(
    () => loadConfig({ ADMIN_TOKEN: 'short-secret' }),
    (error: ShipError) => !error.message.includes('short-secret') && /ADMIN_TOKEN=\(hidden\) is invalid: must be at least 16 characters/.test(error.message),
  );
});

test('empty variables count as unset', () => {
  assert.equal(loadConfig({ ADMIN_TOKEN: '', DATABASE_URL: '' }).adminToken, undefined);
});
