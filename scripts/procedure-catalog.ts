/**
 * Writes src/ops/procedures/catalog.ts from the procedure registry, so `shipshape procedures`
 * lists them without loading their code. Run after adding or changing a procedure:
 *
 *   node scripts/procedure-catalog.ts          # rewrite the catalog
 *   node scripts/procedure-catalog.ts --check  # exit 1 if it is out of date (test/cli/procedure-catalog.test.ts)
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { procedureListing } from '../src/ops/engine/registry.ts';
import { procedures } from '../src/ops/procedures/index.ts';

export const catalogFile = fileURLToPath(new URL('../src/ops/procedures/catalog.ts', import.meta.url));

export function renderCatalog(): string {
  return `/**
 * What \`shipshape procedures\` lists, written from the registry (index.ts) by
 * \`node scripts/procedure-catalog.ts\`; test/cli/procedure-catalog.test.ts fails when it is
 * out of date. Do not edit by hand.
 */
import type { ProcedureListing } from '../engine/registry.ts';

export const procedureCatalog: readonly ProcedureListing[] = ${JSON.stringify(procedureListing(procedures), null, 2)};
`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const wanted = renderCatalog();
  if (process.argv.includes('--check')) {
    const current = await readFile(catalogFile, 'utf8').catch(() => '');
    if (current !== wanted) {
      process.stderr.write('src/ops/procedures/catalog.ts is out of date: run `node scripts/procedure-catalog.ts`\n');
      process.exitCode = 1;
    }
  } else {
    await writeFile(catalogFile, wanted);
  }
}
