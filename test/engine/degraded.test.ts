/**
 * The runner when the database cannot help: unreachable (lock files only, no mirror), not
 * migrated (the mirror fails quietly), or the very thing a procedure replaces (no runner
 * connection held during steps, mirror written at the end).
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { z } from 'zod';
import { shipshapeProfile } from '../../src/app-profile.ts';
import { loadConfig } from '../../src/config/index.ts';
import { Migrator } from '../../src/db/migrator.ts';
import { createLogger } from '../../src/log.ts';
import { defineProcedure, runProcedure } from '../../src/ops/engine/index.ts';
import { journalPath } from '../../src/ops/engine/journal.ts';
import { createStateDir, createTestDatabase, type TestDatabase } from '../helpers/postgres.ts';

const logger = createLogger('silent');
let migrated: TestDatabase;
let bare: TestDatabase;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  migrated = await createTestDatabase();
  bare = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: migrated.url, max: 2 });
  try {
    const outcome = await new Migrator(pool, shipshapeProfile.migrations, logger).up();
    if (outcome.error) throw outcome.error;
  } finally {
    await pool.end();
  }
});

after(async () => {
  for (const cleanup of cleanups) await cleanup();
  await migrated.drop();
  await bare.drop();
});

/** Writes a file (no database needed); undo removes it. */
function fileProcedure(options: { replacesDatabase?: boolean } = {}) {
  return defineProcedure({
    id: 'fixture.file',
    command: 'fixture file',
    title: 'Fixture: write a file',
    runbookSection: 'Test fixture',
    whenToUse: 'Only in tests.',
    risk: 'low',
    expectedDuration: 'a moment',
    issueType: 'infrastructure',
    ...(options.replacesDatabase ? { replacesDatabase: true } : {}),
    params: z.object({ file: z.string() }),
    locks: () => ['database:test'],
    prerequisites: [],
    steps: [
      {
        id: 'write',
        title: 'Write the file',
        describe: (context) => [`write ${context.params.file}`],
        async run(context) {
          await writeFile(context.params.file, 'x');
          return { file: context.params.file };
        },
      },
    ],
    verification: [],
  });
}

async function stateDir(): Promise<string> {
  const state = await createStateDir();
  cleanups.push(state.cleanup);
  return state.path;
}

async function lockEvent(dir: string, runId: string): Promise<unknown> {
  const lines = (await readFile(journalPath(dir, runId), 'utf8')).trim().split('\n');
  return lines
    .map((line): unknown => JSON.parse(line))
    .find((entry) => typeof entry === 'object' && entry !== null && 'type' in entry && entry.type === 'lock.acquired');
}

test('with the database unreachable, a run holds the lock file alone and completes', async () => {
  const dir = await stateDir();
  const config = loadConfig({
    DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
    STATE_DIR: dir,
    SHIPSHAPE_OPERATOR: 'alice',
    DATABASE_CONNECT_TIMEOUT_MS: '2000',
  });
  const report = await runProcedure(fileProcedure(), { file: path.join(dir, 'out') }, {}, { config, logger });
  assert.equal(report.state, 'succeeded');
  assert.ok(report.runId);
  const event = await lockEvent(dir, report.runId);
  assert.ok(typeof event === 'object' && event !== null && 'advisory' in event && 'resources' in event);
  assert.deepEqual([event.resources, event.advisory], [['database:test'], false]);
});

test('a database without the mirror tables never breaks a run', async () => {
  const dir = await stateDir();
  const config = loadConfig({ DATABASE_URL: bare.url, STATE_DIR: dir, SHIPSHAPE_OPERATOR: 'alice' });
  const report = await runProcedure(fileProcedure(), { file: path.join(dir, 'out') }, {}, { config, logger });
  assert.equal(report.state, 'succeeded');
  assert.equal(report.exitCode, 0);
});

test('a procedure that replaces the database takes no advisory lock, and is mirrored once it ends', async () => {
  const dir = await stateDir();
  const config = loadConfig({ DATABASE_URL: migrated.url, STATE_DIR: dir, SHIPSHAPE_OPERATOR: 'alice' });
  const replacing = await runProcedure(fileProcedure({ replacesDatabase: true }), { file: path.join(dir, 'a') }, {}, { config, logger });
  const ordinary = await runProcedure(fileProcedure(), { file: path.join(dir, 'b') }, {}, { config, logger });
  assert.ok(replacing.runId && ordinary.runId);
  const advisory = async (runId: string) => {
    const event = await lockEvent(dir, runId);
    return typeof event === 'object' && event !== null && 'advisory' in event ? event.advisory : undefined;
  };
  assert.equal(await advisory(replacing.runId), false);
  assert.equal(await advisory(ordinary.runId), true);
  const client = new pg.Client({ connectionString: migrated.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string }>('SELECT id FROM shipshape.runs ORDER BY id');
    assert.deepEqual(rows.map((row) => row.id).sort(), [replacing.runId, ordinary.runId].sort());
  } finally {
    await client.end();
  }
});
