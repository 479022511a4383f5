/**
 * The stack is one-way (docs/architecture.md): a module imports only from layers below its
 * own, never from above and never from a peer beside it. Every import under src/ — static,
 * type-only, re-exports and dynamic `import()` — is read with TypeScript's own pre-processor
 * and checked against the order below; a failure names the file, the import and both layers.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const srcRoot = fileURLToPath(new URL('../../src/', import.meta.url));

/**
 * Top to bottom; the same order as the diagram in docs/architecture.md. A module is a folder
 * under src/ (`ops/` counts per sub-folder) or a file at src/'s top level. Modules in one row
 * are peers: neither imports the other.
 */
export const layers: readonly (readonly string[])[] = [
  ['cli'],
  ['runtime'],
  ['http'],
  ['scheduler'],
  ['ops/procedures', 'ops/present'],
  ['ops/maintenance', 'ops/release', 'ops/watchdog'],
  ['ops/diagnostics'],
  ['ops/backups'],
  ['ops/engine'],
  ['domain'],
  ['adapters', 'db'],
  ['config'],
  ['time', 'log.ts', 'app-profile.ts'],
  ['errors.ts', 'version.ts', 'redact.ts', 'bytes.ts'],
];

export interface ImportEdge {
  /** Importing file, relative to src/. */
  readonly file: string;
  /** The specifier as written. */
  readonly specifier: string;
  /** Imported file, relative to src/ (may start with `../` when outside src/). */
  readonly target: string;
}

/** The module a src-relative path belongs to, or undefined when it is outside src/. */
export function moduleOf(relative: string): string | undefined {
  if (relative.startsWith('..')) return undefined;
  const parts = relative.split('/');
  if (parts.length === 1) return parts[0];
  if (parts[0] === 'ops' && parts.length > 2) return `ops/${parts[1]}`;
  return parts[0];
}

function layerOf(module: string): number {
  return layers.findIndex((row) => row.includes(module));
}

/** Every import that points up the stack or sideways to a peer, as one line each. */
export function violations(edges: readonly ImportEdge[]): string[] {
  const found: string[] = [];
  for (const edge of edges) {
    const from = moduleOf(edge.file);
    const to = moduleOf(edge.target);
    if (from === undefined || to === undefined || from === to) continue;
    const fromLayer = layerOf(from);
    const toLayer = layerOf(to);
    if (fromLayer < 0 || toLayer < 0) {
      found.push(
        `src/${edge.file}: '${edge.specifier}' — module ${fromLayer < 0 ? from : to} is in no layer; add it to the order in test/architecture/layers.test.ts and docs/architecture.md`,
      );
    } else if (toLayer < fromLayer) {
      found.push(`src/${edge.file}: '${edge.specifier}' points up the stack (${from} must not import ${to}, which sits above it)`);
    } else if (toLayer === fromLayer) {
      found.push(`src/${edge.file}: '${edge.specifier}' points sideways (${from} and ${to} are peers; move what both need below them)`);
    }
  }
  return found;
}

async function sourceFiles(folder: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    const full = path.join(folder, entry.name);
    if (entry.isDirectory()) files.push(...(await sourceFiles(full)));
    else if (entry.name.endsWith('.ts')) files.push(full);
  }
  return files;
}

async function importEdges(): Promise<ImportEdge[]> {
  const edges: ImportEdge[] = [];
  for (const file of await sourceFiles(srcRoot)) {
    const info = ts.preProcessFile(await readFile(file, 'utf8'), true, true);
    for (const imported of info.importedFiles) {
      if (!imported.fileName.startsWith('.')) continue; // packages and node: built-ins
      const target = path.resolve(path.dirname(file), imported.fileName);
      edges.push({
        file: path.relative(srcRoot, file).split(path.sep).join('/'),
        specifier: imported.fileName,
        target: path.relative(srcRoot, target).split(path.sep).join('/'),
      });
    }
  }
  return edges;
}

test('no import under src/ points up the stack or sideways to a peer', async () => {
  const edges = await importEdges();
  assert.ok(edges.length > 500, `expected to find the codebase's imports, found ${edges.length}`);
  const found = violations(edges);
  assert.deepEqual(found, [], `imports against the one-way stack (docs/architecture.md):\n${found.join('\n')}`);
});

test('every module under src/ has a place in the layer order', async () => {
  const modules = new Set((await sourceFiles(srcRoot)).map((file) => moduleOf(path.relative(srcRoot, file).split(path.sep).join('/'))));
  const placed = new Set(layers.flat());
  assert.deepEqual([...modules].filter((module) => module !== undefined && !placed.has(module)).sort(), []);
});

test('the checker names an upward, a sideways and a dynamic import, and lets downward ones pass', () => {
  const found = violations([
    { file: 'ops/procedures/x.ts', specifier: '../../runtime/y.ts', target: 'runtime/y.ts' },
    { file: 'ops/procedures/a.ts', specifier: '../present/b.ts', target: 'ops/present/b.ts' },
    { file: 'time/recurrence.ts', specifier: '../config/index.ts', target: 'config/index.ts' },
    { file: 'cli/main.ts', specifier: '../domain/users.ts', target: 'domain/users.ts' },
    { file: 'domain/users.ts', specifier: '../db/pool.ts', target: 'db/pool.ts' },
    { file: 'version.ts', specifier: '../package.json', target: '../package.json' },
  ]);
  assert.deepEqual(found, [
    "src/ops/procedures/x.ts: '../../runtime/y.ts' points up the stack (ops/procedures must not import runtime, which sits above it)",
    "src/ops/procedures/a.ts: '../present/b.ts' points sideways (ops/procedures and ops/present are peers; move what both need below them)",
    "src/time/recurrence.ts: '../config/index.ts' points up the stack (time must not import config, which sits above it)",
  ]);
  const dynamic = ts.preProcessFile("const { buildApp } = await import('../http/app.ts');", true, true);
  assert.deepEqual(
    dynamic.importedFiles.map((file) => file.fileName),
    ['../http/app.ts'],
  );
});
