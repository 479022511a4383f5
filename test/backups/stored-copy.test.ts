/**
 * A backup is checked as it streams into storage, and then its stored copy is read back: a
 * store that acknowledges a write and keeps less of it, or other bytes, fails the backup
 * (nothing sealed, nothing left), and `db verify` reads the copy back in full again, so bytes
 * changed at rest are caught there.
 */
import assert from 'node:assert/strict';
import { mkdtemp, open, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { type ObjectStore, openObjectStore } from '../../src/adapters/storage/index.ts';
import { shipshapeProfile } from '../../src/app-profile.ts';
import { loadConfig } from '../../src/config/index.ts';
import { ShipError } from '../../src/errors.ts';
import { takeVerifiedBackup, verifyBackup } from '../../src/ops/backups/take-backup.ts';
import { prepareAppDatabase } from '../helpers/backups.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';

let database: TestDatabase;
let folder: string;

before(async () => {
  database = await createTestDatabase('shipshape_bk');
  await prepareAppDatabase(database.url);
  folder = await mkdtemp(path.join(tmpdir(), 'shipshape-stored-copy-'));
});

after(async () => {
  await rm(folder, { recursive: true, force: true });
  await database.drop();
});

/** The real folder store, except that after acknowledging a dump it damages the file (`damage` gets its path and size). */
function storeThatDamagesDumps(inner: ObjectStore, root: string, damage: (file: string, bytes: number) => Promise<void>): ObjectStore {
  return {
    location: inner.location,
    async put(key, body, options) {
      const result = await inner.put(key, body, options);
      if (key.endsWith('/dump')) await damage(path.join(root, key), result.bytes);
      return result;
    },
    putBuffer: (key, content, options) => inner.putBuffer(key, content, options),
    putJson: (key, value, options) => inner.putJson(key, value, options),
    get: (key) => inner.get(key),
    getBuffer: (key, options) => inner.getBuffer(key, options),
    head: (key) => inner.head(key),
    list: (prefix) => inner.list(prefix),
    delete: (key) => inner.delete(key),
    checkWritable: () => inner.checkWritable(),
    close: () => inner.close(),
  };
}

function backupOptions(store: ObjectStore) {
  return {
    config: loadConfig({ DATABASE_URL: database.url, STATE_DIR: folder }),
    profile: shipshapeProfile,
    store,
    source: { kind: 'postgres' as const, url: database.url, databaseName: database.name },
    restoreTest: false,
    context: { purpose: 'manual', runId: null, operator: 'test' },
  };
}

test('a store that acknowledges a dump and keeps less of it fails the backup: not sealed, nothing left under its id', async () => {
  const root = path.join(folder, 'losing');
  const inner = openObjectStore(pathToFileURL(root).href);
  const store = storeThatDamagesDumps(inner, root, (file, bytes) => truncate(file, bytes - 100));
  try {
    await assert.rejects(
      takeVerifiedBackup(backupOptions(store)),
      (error: unknown) =>
        error instanceof ShipError && error.code === 'SHIP_ERR_BACKUP_NOT_VERIFIED' && /its stored dump is \d+ bytes, but \d+ were written/.test(error.message),
    );
    assert.deepEqual(await inner.list(''), []);
  } finally {
    store.close();
  }
});

test('a store that acknowledges a dump and keeps other bytes of the same size fails the backup: only reading the copy back can tell', async () => {
  const root = path.join(folder, 'flipping');
  const inner = openObjectStore(pathToFileURL(root).href);
  const store = storeThatDamagesDumps(inner, root, async (file, bytes) => {
    const handle = await open(file, 'r+');
    await handle.write(Buffer.from('changed'), 0, 7, bytes - 50);
    await handle.close();
  });
  try {
    await assert.rejects(
      takeVerifiedBackup(backupOptions(store)),
      (error: unknown) => error instanceof ShipError && error.code === 'SHIP_ERR_BACKUP_NOT_VERIFIED' && /SHA-256 on re-read/.test(error.message),
    );
    assert.deepEqual(await inner.list(''), []);
  } finally {
    store.close();
  }
});

test('a sealed backup whose stored bytes later change fails `db verify`’s full re-read', async () => {
  const root = path.join(folder, 'at-rest');
  const store = openObjectStore(pathToFileURL(root).href);
  try {
    const manifest = await takeVerifiedBackup(backupOptions(store));
    assert.match(manifest.verification.checks.join('\n'), /pg_restore --list accepts it \(fed from the dump as it streamed\)/);
    // Same size, different bytes: only reading the copy back can tell.
    const handle = await open(path.join(root, manifest.dump.objectKey), 'r+');
    await handle.write(Buffer.from('changed'), 0, 7, manifest.dump.bytes - 50);
    await handle.close();
    await assert.rejects(
      verifyBackup({ config: backupOptions(store).config, store, facts: manifest, restoreTest: false }),
      (error: unknown) => error instanceof ShipError && error.code === 'SHIP_ERR_BACKUP_NOT_VERIFIED' && /SHA-256 on re-read/.test(error.message),
    );
  } finally {
    store.close();
  }
});
