#!/usr/bin/env node
// The `shipshape` command. Node 24 runs the TypeScript sources directly (type stripping), so
// there is no build output. Node's compile cache keeps the bytecode of every module loaded here
// between runs, which saves about a third of each start-up's CPU; it lives in the user's own
// cache folder (not a shared /tmp), and a cache that cannot be written only costs that saving.
import { enableCompileCache } from 'node:module';
import { homedir } from 'node:os';
import path from 'node:path';

// Everything Shipshape writes under STATE_DIR (the embedded database, run journals, local
// backups, one-time tokens) is for the account that runs it: files 0600, folders 0700.
process.umask(0o077);
enableCompileCache(
  process.env.NODE_COMPILE_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'shipshape', 'node-compile-cache'),
);
// `serve`, `worker` and `db backup` run with V8 settings of their own (a young generation that
// stays small; for `db backup` no TurboFan for PGlite's WebAssembly), set before any command
// code loads: src/cli/command-tuning.ts.
(await import('../src/cli/command-tuning.ts')).tuneV8For(process.argv);
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
