/**
 * The GDPR export archive on S3 (s3rver): one CSV per table holding exactly the user's rows,
 * properly quoted, and a manifest with counts and sha256 per file; verification reads the
 * stored copy back and refuses one that was tampered with.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import tar from 'tar-stream';
import { openObjectStore, type ObjectStore } from '../../src/adapters/storage/index.ts';
import { defaultUsersTable } from '../../src/domain/erasure.ts';
import { parseCsv } from '../../src/domain/csv.ts';
import {
  latestVerifiedExport,
  markExportVerified,
  readUserTables,
  recordExport,
  verifyExportArchive,
  writeExportArchive,
} from '../../src/domain/user-export.ts';
import { ShipError } from '../../src/errors.ts';
import { startS3rver, type FakeS3 } from '../fakes/s3.ts';
import { startTestApi, type TestApi } from '../helpers/api.ts';
import { seedUser } from '../helpers/users.ts';

async function unpack(store: ObjectStore, key: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const extract = tar.extract();
  const collect = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(Buffer.from(chunk as Uint8Array));
      files.set(entry.header.name, Buffer.concat(chunks));
    }
  })();
  await Promise.all([pipeline(await store.get(key), createGunzip(), extract), collect]);
  return files;
}

describe('export archive in legal storage', () => {
  let api: TestApi;
  let s3: FakeS3;
  let store: ObjectStore;
  before(async () => {
    [api, s3] = await Promise.all([startTestApi(), startS3rver({ bucket: 'legal' })]);
    store = openObjectStore('s3://legal/gdpr', s3.storageOptions);
  });
  after(async () => {
    store.close();
    await api.close();
    await s3.close();
  });

  test("the archive holds one CSV per table with exactly the user's rows and a manifest with counts and sha256", async () => {
    const ada = await seedUser(api, { label: 'ada' });
    await seedUser(api, { label: 'bob' });
    const pool = api.server.database.pool;
    const tables = await readUserTables(pool, defaultUsersTable, ada.id);
    const stored = await writeExportArchive(store, tables, { userId: ada.id, createdBy: 'alice', ticket: 'GDPR-7' });
    assert.match(stored.key, new RegExp(`^exports/${ada.id}/.+\\.tar\\.gz$`));
    assert.equal(stored.location, 's3://legal/gdpr');

    const manifest = await verifyExportArchive(store, stored.key, { sha256: stored.sha256, bytes: stored.bytes, userId: ada.id });
    assert.equal(manifest.ticket, 'GDPR-7');

    const files = await unpack(store, stored.key);
    const onDisk = JSON.parse(files.get('manifest.json')!.toString('utf8'));
    assert.deepEqual(onDisk, JSON.parse(JSON.stringify(stored.manifest)));
    assert.deepEqual([...files.keys()].sort(), ['manifest.json', ...onDisk.files.map((file: { name: string }) => file.name)].sort());
    for (const file of onDisk.files) {
      const content = files.get(file.name)!;
      assert.equal(createHash('sha256').update(content).digest('hex'), file.sha256, file.name);
      assert.equal(content.length, file.bytes);
      assert.equal(parseCsv(content.toString('utf8')).length - 1, file.rows, `${file.name} row count`);
    }
    const rows = (table: string) => onDisk.files.find((file: { table: string }) => file.table === table).rows;
    assert.equal(rows('public.users'), 1);
    assert.equal(rows('public.tasks'), 2);
    assert.equal(rows('public.deletion_approvals'), 1, 'found through deletion_requests');
    assert.equal(rows('public.password_reset_tokens'), 1);

    const tasksCsv = files.get('public.tasks.csv')!.toString('utf8');
    assert.ok(tasksCsv.includes('"ada: Buy milk, eggs and ""good"" bread"'), tasksCsv);
    assert.ok(tasksCsv.includes('"ada: call mum\nthen dad"'), 'newlines stay inside one quoted field');
    const records = parseCsv(tasksCsv);
    const header = records[0]!;
    const milk = records.find((record) => record[header.indexOf('title')]?.includes('milk'))!;
    assert.equal(milk[header.indexOf('notes')], '', 'an empty string is ""');
    const mum = records.find((record) => record[header.indexOf('title')]?.includes('mum'))!;
    assert.equal(mum[header.indexOf('notes')], null, 'NULL is an empty unquoted field');
    assert.doesNotMatch(tasksCsv, /bob:/);

    const usersCsv = files.get('public.users.csv')!.toString('utf8');
    assert.ok(usersCsv.includes(ada.email));
    assert.doesNotMatch(usersCsv, /password_hash|argon2/);
    assert.deepEqual(onDisk.files.find((file: { table: string }) => file.table === 'public.users').omittedColumns, ['password_hash']);
    assert.doesNotMatch(files.get('public.sessions.csv')!.toString('utf8'), /token_hash/);

    const id = await recordExport(pool, stored, { createdBy: 'alice', ticket: 'GDPR-7' });
    assert.equal(await latestVerifiedExport(pool, ada.id), undefined, 'not verified yet');
    await markExportVerified(pool, id);
    assert.equal((await latestVerifiedExport(pool, ada.id))?.key, stored.key);
  });

  test('verification refuses a stored copy that differs from what was written', async () => {
    const eve = await seedUser(api, { label: 'eve' });
    const tables = await readUserTables(api.server.database.pool, defaultUsersTable, eve.id);
    const stored = await writeExportArchive(store, tables, { userId: eve.id, createdBy: 'alice', ticket: null });
    const expected = { sha256: stored.sha256, bytes: stored.bytes, userId: eve.id };

    await assert.rejects(verifyExportArchive(store, stored.key, { ...expected, userId: '00000000-0000-4000-8000-000000000000' }), /not 00000000/);
    await store.putBuffer(stored.key, Buffer.from('not a tar.gz at all'));
    await assert.rejects(
      verifyExportArchive(store, stored.key, expected),
      (error: unknown) => error instanceof ShipError && error.code === 'SHIP_ERR_BACKUP_NOT_VERIFIED' && error.message.includes(stored.key),
    );
  });
});
