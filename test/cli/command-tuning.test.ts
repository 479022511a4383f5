/**
 * Commands start lean: their own V8 settings (src/cli/command-tuning.ts), and the command is
 * built without the rest of the program (src/cli/commands/db-backup.ts) — with exactly the
 * options the whole tree gives it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Command } from 'commander';
import { v8FlagsFor } from '../../src/cli/command-tuning.ts';
import { dbBackupProgram } from '../../src/cli/commands/db-backup.ts';
import { buildProgram } from '../../src/cli/program.ts';

const argv = (...words: string[]) => ['node', 'shipshape', ...words];

describe('V8 settings per command', () => {
  const none = undefined;
  const baselineWasm = ['--liftoff-only', '--no-wasm-tier-up', '--no-wasm-dynamic-tiering'];

  test('serve and db backup keep a small young generation and no TurboFan for WebAssembly; worker a small young generation; others and --help the defaults', () => {
    const tuned = ['--semi-space-growth-factor=1', ...baselineWasm];
    assert.deepEqual(v8FlagsFor(argv('db', 'backup'), none, []), tuned);
    assert.deepEqual(v8FlagsFor(argv('db', 'backup', '--json', '--compression', '3'), none, []), tuned);
    assert.deepEqual(v8FlagsFor(argv('serve', '--no-workers'), none, []), tuned);
    assert.deepEqual(v8FlagsFor(argv('worker'), none, []), ['--semi-space-growth-factor=1']);
    for (const words of [['db', 'backup', '--help'], ['db', 'backups'], ['db', 'restore', 'x'], ['serve', '--help'], []]) {
      assert.deepEqual(v8FlagsFor(argv(...words), none, []), [], words.join(' '));
    }
  });

  test('what the operator gave Node wins: a semi-space size over the small young generation, a WebAssembly flag over baseline code', () => {
    assert.deepEqual(v8FlagsFor(argv('serve'), '--max-semi-space-size=16', []), baselineWasm);
    assert.deepEqual(v8FlagsFor(argv('worker'), undefined, ['--max-semi-space-size=32']), []);
    assert.deepEqual(v8FlagsFor(argv('db', 'backup'), '--max-semi-space-size=16', []), baselineWasm);
    assert.deepEqual(v8FlagsFor(argv('serve'), undefined, ['--wasm-tier-up']), ['--semi-space-growth-factor=1']);
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
