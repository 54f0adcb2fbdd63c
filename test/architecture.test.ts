/**
 * The architecture, checked on every `npm test`: the rooms of src/ and the order of their layers
 * are declared below, and every import must go down that order (type-only imports included: a
 * type names what a module depends on as much as a value does). Nothing in src/ may take part in
 * an import circle of runtime imports (type-only imports are erased by tsc and never load, so a
 * tensor may name its host form and a device its streams, within one room). Only cuda/driver.ts
 * may load koffi.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * Rooms by layer, lowest first. A room is a folder of src/ (written with its slash) or a file at
 * its top. A module may import from its own room and from rooms of lower layers; rooms of one
 * layer know nothing of each other.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['config.ts', 'errors.ts'], // constants, error classes
  ['options.ts', 'tensor/'], // option checks; dtypes, bf16/fp16, host tensors, the seeded PRNG
  ['scheduler.ts', 'reference/', 'cuda/'], // tile scheduler, float64 oracle, CUDA driver layer
  ['backend/'], // the Backend contract: shapes, limits, metadata
  ['cpu-backend/', 'cuda-backend/'], // its two implementations
  ['api/'], // validation, backend choice, getMlaMetadata, flashMlaWithKvcache
  ['verify/'], // the precision rule, problem generators, checked runs (check, demo, bench)
  ['cli/', 'index.ts'], // the two faces of the package: the command line and the entry point
];

interface Import {
  /** Path of the imported module relative to src/ ('cuda/device.ts'), or the bare specifier. */
  target: string;
  typeOnly: boolean;
}

/** Every import and re-export of one TypeScript source, relative targets resolved against `file`. */
function importsOf(file: string, source: string): Import[] {
  const found: Import[] = [];
  const add = (specifier: string, typeOnly: boolean) => {
    const target = specifier.startsWith('.')
      ? posix.normalize(posix.join(posix.dirname(file), specifier)).replace(/\.js$/, '.ts')
      : specifier;
    found.push({ target, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const allNamedAreTypes =
        clause !== undefined &&
        clause.name === undefined &&
        clause.namedBindings !== undefined &&
        ts.isNamedImports(clause.namedBindings) &&
        clause.namedBindings.elements.length > 0 &&
        clause.namedBindings.elements.every((element) => element.isTypeOnly);
      add(node.moduleSpecifier.text, clause?.isTypeOnly === true || allNamedAreTypes);
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier !== undefined &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      const allNamedAreTypes =
        node.exportClause !== undefined &&
        ts.isNamedExports(node.exportClause) &&
        node.exportClause.elements.every((element) => element.isTypeOnly);
      add(node.moduleSpecifier.text, node.isTypeOnly || allNamedAreTypes);
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      add(node.argument.literal.text, true);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments.length === 1 &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      add(node.arguments[0].text, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile(file, source, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS));
  return found;
}

/** The room of a module: its top folder of src/ (with a slash), or itself for a top-level file. */
function roomOf(file: string): string {
  const slash = file.indexOf('/');
  return slash < 0 ? file : file.slice(0, slash + 1);
}

/** Imports that go up (or sideways) the declared layers, and modules in no declared room. */
function layerViolations(
  graph: ReadonlyMap<string, readonly Import[]>,
  layers: readonly (readonly string[])[] = LAYERS,
): string[] {
  const layerOf = new Map<string, number>();
  layers.forEach((rooms, layer) => {
    for (const room of rooms) layerOf.set(room, layer);
  });
  const problems: string[] = [];
  for (const [file, imports] of graph) {
    const from = roomOf(file);
    const fromLayer = layerOf.get(from);
    if (fromLayer === undefined) {
      problems.push(`${file}: its room ${from} is not declared in LAYERS`);
      continue;
    }
    for (const { target } of imports) {
      if (!graph.has(target)) continue; // node:*, packages: see the koffi rule
      const to = roomOf(target);
      const toLayer = layerOf.get(to);
      if (to === from || toLayer === undefined) continue;
      if (toLayer >= fromLayer) {
        problems.push(
          `${file} imports ${target}: ${from} (layer ${fromLayer}) may not depend on ${to} (layer ${toLayer})`,
        );
      }
    }
  }
  return problems;
}

/** Each circle of runtime imports, as the path that closes it ('a.ts -> b.ts -> a.ts'). */
function importCircles(graph: ReadonlyMap<string, readonly Import[]>): string[] {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const circles: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    path.push(file);
    for (const { target, typeOnly } of graph.get(file) ?? []) {
      if (typeOnly || !graph.has(target)) continue;
      const seen = state.get(target);
      if (seen === 'open') {
        circles.push([...path.slice(path.indexOf(target)), target].join(' -> '));
      } else if (seen === undefined) {
        visit(target);
      }
    }
    path.pop();
    state.set(file, 'done');
  };
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file);
  return circles;
}

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return sourceFiles(path);
      return name.endsWith('.ts') ? [path] : [];
    });
}

function srcGraph(): Map<string, Import[]> {
  const graph = new Map<string, Import[]>();
  for (const path of sourceFiles(SRC)) {
    const file = relative(SRC, path).split('\\').join('/');
    graph.set(file, importsOf(file, readFileSync(path, 'utf8')));
  }
  return graph;
}

test('every import in src/ goes down the declared layers', () => {
  assert.deepEqual(layerViolations(srcGraph()), []);
});

test('no import circle in src/', () => {
  assert.deepEqual(importCircles(srcGraph()), []);
});

test('only cuda/driver.ts loads koffi', () => {
  for (const [file, imports] of srcGraph()) {
    if (file === 'cuda/driver.ts') continue;
    const source = readFileSync(join(SRC, file), 'utf8');
    const loads =
      imports.some(({ target, typeOnly }) => target === 'koffi' && !typeOnly) ||
      /(?<!\.resolve)\(\s*['"]koffi['"]\s*\)/.test(source); // require('koffi'), not require.resolve
    assert.ok(!loads, `${file} loads koffi`);
  }
});

test('the checks catch an upward import, a sideways one, an undeclared room and a circle', () => {
  const graph = new Map<string, Import[]>([
    ['tensor/host-tensor.ts', [{ target: 'api/validate.ts', typeOnly: true }]],
    ['cpu-backend/backend.ts', [{ target: 'cuda-backend/launch.ts', typeOnly: false }]],
    ['cuda-backend/launch.ts', []],
    ['api/validate.ts', [{ target: 'tensor/host-tensor.ts', typeOnly: false }]],
    ['attic/old.ts', []],
    ['cuda/device.ts', [{ target: 'cuda/stream.ts', typeOnly: false }]],
    ['cuda/stream.ts', [{ target: 'cuda/event.ts', typeOnly: false }]],
    ['cuda/event.ts', [{ target: 'cuda/device.ts', typeOnly: false }]],
  ]);
  assert.deepEqual(layerViolations(graph), [
    'tensor/host-tensor.ts imports api/validate.ts: tensor/ (layer 1) may not depend on api/ (layer 5)',
    'cpu-backend/backend.ts imports cuda-backend/launch.ts: cpu-backend/ (layer 4) may not depend on cuda-backend/ (layer 4)',
    'attic/old.ts: its room attic/ is not declared in LAYERS',
  ]);
  assert.deepEqual(importCircles(graph), [
    'cuda/device.ts -> cuda/stream.ts -> cuda/event.ts -> cuda/device.ts',
  ]);
  // A type-only import back does not close a circle.
  graph.set('cuda/event.ts', [{ target: 'cuda/device.ts', typeOnly: true }]);
  assert.deepEqual(importCircles(graph), []);
});

test('the parser sees imports, re-exports, import types and dynamic imports, and which are type-only', () => {
  const source = [
    "import { a } from './a.js';",
    "import type { B } from '../b.js';",
    "import { type C, type D } from './c.js';",
    "import { type E, f } from './e.js';",
    "export { g } from './g.js';",
    "export type { H } from './h.js';",
    "type K = typeof import('koffi');",
    "const m = await import('./m.js');",
    "import { readFileSync } from 'node:fs';",
  ].join('\n');
  assert.deepEqual(importsOf('cuda/x.ts', source), [
    { target: 'cuda/a.ts', typeOnly: false },
    { target: 'b.ts', typeOnly: true },
    { target: 'cuda/c.ts', typeOnly: true },
    { target: 'cuda/e.ts', typeOnly: false },
    { target: 'cuda/g.ts', typeOnly: false },
    { target: 'cuda/h.ts', typeOnly: true },
    { target: 'koffi', typeOnly: true },
    { target: 'cuda/m.ts', typeOnly: false },
    { target: 'node:fs', typeOnly: false },
  ]);
});
