/**
 * An error nobody foresaw reaches the operator as one line — what failed, that it is a bug, and
 * the file under STATE_DIR holding the stack — never a stack trace on the screen.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { describeInternalError } from '../../src/cli/main.ts';
import { createStateDir } from '../helpers/postgres.ts';

test('an unforeseen error is one line naming the crash file, which holds the stack', async () => {
  const state = await createStateDir();
  const previous = process.env.STATE_DIR;
  process.env.STATE_DIR = state.path;
  try {
    const line = await describeInternalError(new TypeError("Cannot read properties of undefined (reading 'id')"));
    assert.equal(line.split('\n').length, 1, line);
    assert.match(line, /^error\[SHIP_ERR_INTERNAL\]: Cannot read properties of undefined \(reading 'id'\)\. This is a bug in Shipshape/);
    const file = /details are in (\S+) —/.exec(line)?.[1];
    if (file === undefined) assert.fail(`no crash file named: ${line}`);
    assert.ok(file.startsWith(state.path), line);
    assert.match(await readFile(file, 'utf8'), /TypeError: Cannot read properties.*\n\s+at /);
  } finally {
    if (previous === undefined) delete process.env.STATE_DIR;
    else process.env.STATE_DIR = previous;
    await state.cleanup();
  }
});
