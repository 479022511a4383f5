import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { openObjectStore } from '../../src/adapters/storage/index.ts';
import { exitCheckedOutput, spawnTool, toolFailure } from '../../src/ops/backups/tool-process.ts';

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

test('a tool given a larger stdout buffer (stdbuf, where installed) keeps its own name, output and exit status', async () => {
  const tool = spawnTool('sh', ['-c', 'printf "PGDMP"; echo "pg_dump: error: out of memory" >&2; exit 3'], { env: process.env, stdoutBlockBytes: 1024 * 1024 });
  let output = '';
  tool.child.stdout?.setEncoding('utf8');
  tool.child.stdout?.on('data', (chunk: string) => (output += chunk));
  const exit = await tool.exited;
  assert.equal(exit.code, 3);
  assert.equal(output, 'PGDMP');
  assert.match(toolFailure(tool, exit).message, /^sh exited with code 3: pg_dump: error: out of memory/);
});
