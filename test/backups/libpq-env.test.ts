import assert from 'node:assert/strict';
import { test } from 'node:test';
import { databaseNameOf, withDatabaseName } from '../../src/ops/backups/database-target.ts';
import { libpqEnvironment } from '../../src/ops/backups/libpq-env.ts';
import { pgDumpArguments } from '../../src/ops/backups/dump-postgres.ts';
import { pgRestoreArguments } from '../../src/ops/backups/restore-postgres.ts';

test('the pg tools get the connection from PG* variables, with the password only in PGPASSWORD', () => {
  const env = libpqEnvironment('postgres://app%40corp:s3cr%2Ft@db.internal:6543/app_db?sslmode=require&application_name=x', {
    PATH: '/usr/bin',
    PGSERVICE: 'elsewhere',
    PGPASSWORD: 'stale',
  });
  assert.equal(env.PGHOST, 'db.internal');
  assert.equal(env.PGPORT, '6543');
  assert.equal(env.PGUSER, 'app@corp');
  assert.equal(env.PGPASSWORD, 's3cr/t');
  assert.equal(env.PGDATABASE, 'app_db');
  assert.equal(env.PGSSLMODE, 'require');
  assert.equal(env.PATH, '/usr/bin');
  assert.equal(env.PGSERVICE, undefined, 'inherited PG* variables are dropped');
  const commandLines = [...pgDumpArguments(1, '00000003-1'), ...pgRestoreArguments('app_db', 2, '/tmp/x.dump')].join(' ');
  assert.ok(!commandLines.includes('s3cr'), 'no password on any command line');
});

test('database names are read from and written into URLs without touching the credentials', () => {
  assert.equal(databaseNameOf('postgres://u:p@h:5432/app'), 'app');
  const other = withDatabaseName('postgres://u:p@h:5432/app?sslmode=require', 'app_copy');
  assert.equal(databaseNameOf(other), 'app_copy');
  assert.ok(other.startsWith('postgres://u:p@h:5432/app_copy'));
  assert.ok(other.endsWith('sslmode=require'));
});
