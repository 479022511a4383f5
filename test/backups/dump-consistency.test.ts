/**
 * The manifest's row counts describe exactly the rows in the dump, even while the
 * application writes during the backup: they are read in the snapshot pg_dump uses.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { openObjectStore, type ObjectStore } from '../../src/adapters/storage/index.ts';
import { shipshapeProfile } from '../../src/app-profile.ts';
import { loadConfig } from '../../src/config/index.ts';
import { takeVerifiedBackup } from '../../src/ops/backups/take-backup.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';
import { prepareAppDatabase } from '../helpers/backups.ts';

let database: TestDatabase;
let folder: string;
let store: ObjectStore;

before(async () => {
  database = await createTestDatabase('shipshape_bk');
  await prepareAppDatabase(database.url);
  folder = await mkdtemp(path.join(tmpdir(), 'shipshape-consistency-'));
  store = openObjectStore(pathToFileURL(folder).href);
});

after(async () => {
  store.close();
  await rm(folder, { recursive: true, force: true });
  await database.drop();
});

test('row counts taken while the application inserts match what a restore of the dump holds', async () => {
  const writer = new pg.Client({ connectionString: database.url });
  await writer.connect();
  let writing = true;
  let inserted = 0;
  const writes = (async () => {
    while (writing) {
      await writer.query("INSERT INTO tasks (user_id, title) SELECT id, 'written during the backup' FROM users LIMIT 1");
      inserted += 1;
    }
  })();
  try {
    const config = loadConfig({ DATABASE_URL: database.url, STATE_DIR: folder });
    // The scratch restore compares every table's count with the manifest and throws on any difference.
    const manifest = await takeVerifiedBackup({
      config,
      profile: shipshapeProfile,
      store,
      source: { kind: 'postgres', url: database.url, databaseName: database.name },
      restoreTest: true,
      context: { purpose: 'manual', runId: null, operator: 'test' },
    });
    assert.equal(manifest.verification.restoreTested, true);
    assert.ok(manifest.tables.some((table) => table.name === 'public.tasks' && table.rows >= 6));
  } finally {
    writing = false;
    await writes;
    await writer.end();
  }
  assert.ok(inserted > 0);
});
