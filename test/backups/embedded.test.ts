/**
 * Backup and restore of the embedded database (PGlite under STATE_DIR), from the CLI: the
 * whole cycle, the refusal while `shipshape serve` has the database open, and an embedded
 * backup (PGlite's PostgreSQL 18 pg_dump) restored into the real PostgreSQL 15 server.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, test } from 'node:test';
import { z } from 'zod';
import { loadConfig } from '../../src/config/index.ts';
import { openDatabase } from '../../src/db/index.ts';
import { createLogger } from '../../src/log.ts';
import { prepareSchema } from '../../src/runtime/migrations.ts';
import { startServeProcess } from '../helpers/cli.ts';
import { createStateDir, createTestDatabase } from '../helpers/postgres.ts';
import { addUsers, contents, contentsOf, jsonOf, shipshape, stepOutput, takeBackup } from '../helpers/backups.ts';

const cleanups: Array<() => Promise<void>> = [];

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** Opens the embedded database of `stateDir` in this process for one piece of work. */
async function withEmbedded<T>(
  stateDir: string,
  fn: (db: { query: (sql: string, params?: unknown[]) => Promise<{ rows: unknown[] }> } & Parameters<typeof contentsOf>[0]) => Promise<T>,
): Promise<T> {
  const database = await openDatabase(loadConfig({ STATE_DIR: stateDir }), createLogger('silent'));
  const client = await database.pool.connect();
  try {
    return await fn(client);
  } finally {
    client.release();
    await database.close();
  }
}

async function embeddedState(): Promise<{ stateDir: string; env: Record<string, string> }> {
  const state = await createStateDir();
  cleanups.push(state.cleanup);
  const database = await openDatabase(loadConfig({ STATE_DIR: state.path }), createLogger('silent'));
  try {
    await prepareSchema(database, createLogger('silent'), { migrate: true });
    await addUsers(database.pool, ['ada@example.com', 'grace@example.com']);
  } finally {
    await database.close();
  }
  return { stateDir: state.path, env: { STATE_DIR: state.path, SHIPSHAPE_OPERATOR: 'alice', SHIPSHAPE_ALLOW_INLINE_APPROVAL: 'true' } };
}

describe('the embedded database', () => {
  test('backup → verify → restore (a new folder swapped in, the replaced one kept) → `runs rollback` swaps it back, with the restore refused while `shipshape serve` has the database open', async () => {
    const { stateDir, env } = await embeddedState();
    const backedUp = await withEmbedded(stateDir, contentsOf);
    const backupId = await takeBackup(env);

    const verified = await shipshape(['db', 'verify', backupId, '--restore', '--json'], env);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(String(jsonOf(verified).checks), /SQL dump is complete.*restored into a scratch in-memory PGlite: all \d+ tables' row counts match/);

    const damaged = await withEmbedded(stateDir, async (db) => {
      await db.query("DELETE FROM tasks WHERE title LIKE 'first%'");
      return contentsOf(db);
    });

    const serve = await startServeProcess({ STATE_DIR: stateDir, PORT: '0' });
    try {
      const refused = await shipshape(['db', 'restore', backupId, '--approved-by', 'bob', '--yes'], env);
      assert.equal(refused.code, 3);
      assert.match(refused.stderr, new RegExp(`open in process ${serve.child.pid}.*stop it`));
    } finally {
      await serve.stop();
    }

    const restored = await shipshape(['db', 'restore', backupId, '--approved-by', 'bob', '--yes', '--json'], env);
    assert.equal(restored.code, 0, `${restored.stdout}\n${restored.stderr}`);
    assert.equal(await withEmbedded(stateDir, contentsOf), backedUp);
    const runId = String(jsonOf(restored).runId);
    assert.ok((await readdir(path.join(stateDir, 'db'))).includes(`data.pre-restore-${runId}`), 'the replaced folder is kept');

    const rolledBack = await shipshape(['runs', 'rollback', runId, '--yes', '--json'], env);
    assert.equal(rolledBack.code, 0, `${rolledBack.stdout}\n${rolledBack.stderr}`);
    assert.equal(await withEmbedded(stateDir, contentsOf), damaged);
    assert.deepEqual(
      (await readdir(path.join(stateDir, 'db'))).filter((name) => name.startsWith('data.')),
      [],
      'only the live folder is left',
    );
  });

  test('an embedded backup restores into a real PostgreSQL 15, leaving out the settings PostgreSQL 15 does not know', async () => {
    const { stateDir, env } = await embeddedState();
    const backedUp = await withEmbedded(stateDir, contentsOf);
    const backupId = await takeBackup(env);

    const target = await createTestDatabase('shipshape_bk');
    cleanups.push(() => target.drop());
    const operatorState = await createStateDir();
    cleanups.push(operatorState.cleanup);
    const restored = await shipshape(['db', 'restore', backupId, '--approved-by', 'bob', '--yes', '--json'], {
      DATABASE_URL: target.url,
      STATE_DIR: operatorState.path,
      BACKUP_STORAGE_URL: pathToFileURL(path.join(stateDir, 'backups')).href,
      SHIPSHAPE_OPERATOR: 'alice',
      SHIPSHAPE_ALLOW_INLINE_APPROVAL: 'true',
    });
    assert.equal(restored.code, 0, `${restored.stdout}\n${restored.stderr}`);
    const output = z.object({ leftOutSettings: z.array(z.string()) }).parse(stepOutput(jsonOf(restored), 'restore'));
    assert.ok(output.leftOutSettings.includes('transaction_timeout'), `left out: ${output.leftOutSettings.join(', ')}`);
    assert.equal(await contents(target.url), backedUp);
  });
});
