/**
 * What Shipshape writes under STATE_DIR — the embedded database's files, run journals, local
 * backups — is readable by the account that runs it only: files 0600, folders 0700.
 */
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { createStateDir } from '../helpers/postgres.ts';

async function* walk(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    yield full;
    if (entry.isDirectory()) yield* walk(full);
  }
}

test('the embedded database, journals and backups under STATE_DIR are private to their owner', async () => {
  const state = await createStateDir();
  try {
    const backup = await runCli(['db', 'backup'], { STATE_DIR: state.path });
    assert.equal(backup.code, 0, backup.stderr);
    const open: string[] = [];
    let seen = 0;
    for await (const file of walk(state.path)) {
      seen += 1;
      const { mode } = await stat(file);
      if ((mode & 0o077) !== 0) open.push(`${(mode & 0o777).toString(8)} ${path.relative(state.path, file)}`);
    }
    assert.ok(seen > 10, `the backup wrote the database, a journal and the dump (${seen} entries)`);
    assert.deepEqual(open, [], 'entries readable or writable by others');
  } finally {
    await state.cleanup();
  }
});
