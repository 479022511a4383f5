/**
 * `shipshape procedures` lists the procedures from src/ops/procedures/catalog.ts so that it
 * starts without loading their code; the catalog must say exactly what the registry says.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { catalogFile, renderCatalog } from '../../scripts/procedure-catalog.ts';

test('the procedure catalog that `shipshape procedures` lists is up to date with the registry (else: node scripts/procedure-catalog.ts)', async () => {
  assert.equal(await readFile(catalogFile, 'utf8'), renderCatalog());
});
