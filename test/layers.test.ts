import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// The dependency direction of STYLE.md: each layer imports only the layers listed.
const allowed: Record<string, string[]> = {
  api: [],
  base: [],
  client: ['api'],
  store: ['api', 'base'],
  auth: ['api', 'base'],
  metadata: ['api', 'base'],
  net: ['base'],
  server: ['api', 'base', 'client', 'store', 'auth', 'metadata', 'net'],
  agent: ['api', 'base', 'client', 'store', 'metadata', 'net'],
  cli: ['api', 'base', 'client'],
  web: ['api', 'client'],
};
// Browser-safe layers may not import node: modules.
const browserSafe = new Set(['api', 'client', 'web']);

const src = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

function* sources(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* sources(p);
    else if (/\.tsx?$/.test(e.name)) yield p;
  }
}

function importsOf(text: string): string[] {
  const out: string[] = [];
  const re = /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

test('every import points down the layers of STYLE.md', () => {
  const problems: string[] = [];
  for (const file of sources(src)) {
    const rel = relative(src, file);
    // Files at the top of src/ are the binary's composition root and may import anything.
    if (!rel.includes('/')) continue;
    const layer = rel.split('/')[0]!;
    const permitted = allowed[layer];
    if (!permitted) {
      problems.push(`${relative(src, file)}: "${layer}" is not a known layer`);
      continue;
    }
    const isTest = file.endsWith('.test.ts');
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('node:')) {
        if (browserSafe.has(layer) && !isTest) problems.push(`${relative(src, file)} imports ${spec} in browser-safe layer "${layer}"`);
        continue;
      }
      if (!spec.startsWith('.')) continue;
      const target = relative(src, resolve(dirname(file), spec)).split('/')[0]!;
      if (target === layer || target.startsWith('..')) continue;
      // Tests may use real implementations of lower or sibling layers to exercise their own.
      if (isTest && target !== 'cli' && target !== 'agent' && target !== 'web') continue;
      if (!permitted.includes(target)) problems.push(`${relative(src, file)} imports ${spec} (layer "${layer}" may not import "${target}")`);
    }
  }
  assert.deepEqual(problems, []);
});

test('the import check catches a wrong arrow', () => {
  assert.deepEqual(importsOf(`import { x } from '../server/app.ts';\nimport '../y.ts';\nconst z = await import('../cli/main.ts');`), [
    '../server/app.ts',
    '../y.ts',
    '../cli/main.ts',
  ]);
});
