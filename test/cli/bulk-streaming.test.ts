/**
 * `db backup` starts lean: the young generation is kept small for the commands that stream a
 * dump (src/cli/bulk-streaming.ts), and the command is built without the rest of the program
 * (src/cli/commands/db-backup.ts) — with exactly the options the whole tree gives it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Command } from 'commander';
import { streamsBulkData } from '../../src/cli/bulk-streaming.ts';
import { dbBackupProgram } from '../../src/cli/commands/db-backup.ts';
import { buildProgram } from '../../src/cli/program.ts';

const argv = (...words: string[]) => ['node', 'shipshape', ...words];

describe('bulk streaming commands', () => {
  test('db backup (with its flags) streams bulk data; other commands and --help do not', () => {
    assert.equal(streamsBulkData(argv('db', 'backup')), true);
    assert.equal(streamsBulkData(argv('db', 'backup', '--json', '--compression', '3')), true);
    assert.equal(streamsBulkData(argv('db', 'backup', '--help')), false);
    assert.equal(streamsBulkData(argv('db', 'backups')), false);
    assert.equal(streamsBulkData(argv('db', 'restore', 'x')), false);
    assert.equal(streamsBulkData(argv('serve')), false);
    assert.equal(streamsBulkData(argv()), false);
  });
});

describe('the light `db backup` program', () => {
  const backupCommand = (program: Command) => program.commands.find((c) => c.name() === 'db')?.commands.find((c) => c.name() === 'backup');
  const flagsOf = (command: Command | undefined) => (command?.options ?? []).map((option) => `${option.flags} ${String(option.defaultValue)}`).sort();

  test('holds only `db backup`, with the same options and description as in the whole program', () => {
    const light = dbBackupProgram();
    assert.deepEqual(
      light.commands.map((c) => c.name()),
      ['db'],
    );
    assert.deepEqual(
      light.commands[0]?.commands.map((c) => c.name()),
      ['backup'],
    );
    const whole = backupCommand(buildProgram());
    assert.ok(whole, 'the whole program has `db backup`');
    assert.deepEqual(flagsOf(backupCommand(light)), flagsOf(whole));
    assert.equal(backupCommand(light)?.description(), whole.description());
  });
});
