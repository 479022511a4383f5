#!/usr/bin/env node
// Node 24 runs the TypeScript sources directly (type stripping); there is no build output.
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
