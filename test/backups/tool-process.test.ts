import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { openObjectStore } from '../../src/adapters/storage/index.ts';
import { exitCheckedOutput, spawnTool } from '../../src/ops/backups/tool-process.ts';

test('a dump whose tool exits non-zero after writing output is never stored, not even truncated', async () => {
  const folder = await mkdtemp(path.join(tmpdir(), 'shipshape-tool-'));
  const store = openObjectStore(pathToFileURL(folder).href);
  try {
    // Writes a good-looking start, then fails the way pg_dump does when the server goes away.
    const tool = spawnTool('sh', ['-c', 'printf "PGDMP partial archive"; echo "pg_dump: error: connection lost" >&2; exit 1'], { env: process.env });
    await assert.rejects(store.put('b-20261127-000000-app/dump', exitCheckedOutput(tool)), /sh exited with code 1: pg_dump: error: connection lost/);
    assert.deepEqual(await store.list(''), []);
  } finally {
    store.close();
    await rm(folder, { recursive: true, force: true });
  }
});

test('a tool that is not installed is reported as missing with what to do', async () => {
  const tool = spawnTool('/nonexistent/pg_dump', ['--version'], { env: process.env });
  await assert.rejects(
    tool.exited,
    (error: unknown) => error instanceof Error && 'code' in error && error.code === 'SHIP_ERR_TOOL_MISSING' && /PG_BIN_DIR/.test(error.message),
  );
});
