import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTestApp, testToken, type TestApp } from '../server/test-app.ts';
import { runCaptured } from './captured-io.ts';

let t: TestApp;
let env: Record<string, string>;
let dir: string;

before(async () => {
  t = await buildTestApp();
  await t.seed();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  env = { CROWD_URL: `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`, CROWD_TOKEN: testToken, CROWD_CONFIG: '/nonexistent/c.yaml' };
  dir = await mkdtemp(join(tmpdir(), 'crowd-edit-test-'));
  await t.store.create({ kind: 'vm', name: 'ed-1', labels: { env: 'dev' }, spec: { image: 'debian', machineType: 'small' } }, { author: 'seed' });
});
after(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

/** A fake $EDITOR: a shell script that rewrites the file it is given. */
async function editor(name: string, script: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\nset -e\n${script}\n`);
  await chmod(path, 0o755);
  return path;
}

const edit = (editorPath: string, extra: string[] = []) => runCaptured(['vm', 'edit', 'ed-1', ...extra], { env: { ...env, EDITOR: editorPath } });

test('an edit is saved with If-Match and its reason', async () => {
  const before = await t.store.get({ kind: 'vm', idOrName: 'ed-1' });
  const r = await edit(await editor('to-prod.sh', `sed -i 's/env: dev/env: prod/' "$1"`), ['--reason', 'promote']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^vm "ed-1" edited \(revision \d+\)\n$/);
  const after = await t.store.get({ kind: 'vm', idOrName: 'ed-1' });
  assert.deepEqual(after.labels, { env: 'prod' });
  assert.deepEqual(after.spec, before.spec);
  const h = await t.store.history({ kind: 'vm', idOrName: 'ed-1' });
  assert.equal(h.items[0]!.reason, 'promote');
});

test('an unchanged file writes nothing', async () => {
  const before = await t.store.revision();
  const r = await edit(await editor('noop.sh', 'true'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /unchanged; nothing written/);
  const reformatted = await edit(await editor('reformat.sh', `printf '\\n# a comment\\n' >> "$1"`));
  assert.equal(reformatted.code, 0, reformatted.stderr);
  assert.match(reformatted.stdout, /unchanged; nothing written/);
  assert.equal(await t.store.revision(), before);
});

test('broken YAML, a changed read-only field or an invalid spec is an error and writes nothing', async () => {
  const before = await t.store.revision();
  const cases: [string, string, RegExp][] = [
    ['broken.sh', `printf 'spec: [\\n' >> "$1"`, /not valid YAML/],
    ['rename.sh', `sed -i 's/^name: ed-1/name: ed-2/' "$1"`, /"name" cannot be changed/],
    ['bad-spec.sh', `sed -i 's/machineType: small/machineType: 7/' "$1"`, /\/spec\/machineType/],
    ['failing.sh', 'exit 3', /Editor .* failed/],
  ];
  for (const [name, script, want] of cases) {
    const r = await edit(await editor(name, script));
    assert.equal(r.code, 1, `${name}: ${r.stdout}`);
    assert.match(r.stderr, want);
  }
  assert.equal(await t.store.revision(), before);
});

test('an edit loses to a write that happened while the editor was open, and writes nothing', async () => {
  // The "editor" makes a concurrent write through the API before it saves its own change.
  const patch = join(dir, 'patch.mjs');
  await writeFile(
    patch,
    `const r = await fetch(${JSON.stringify(`${env.CROWD_URL}/v1/vms/ed-1`)}, { method: 'PATCH', ` +
      `headers: { authorization: 'Bearer ${testToken}', 'content-type': 'application/json' }, body: JSON.stringify({ metadata: { touched: true } }) });\n` +
      'process.exit(r.ok ? 0 : 1);\n',
  );
  const r = await edit(await editor('racy.sh', `"${process.execPath}" "${patch}"\nsed -i 's/env: prod/env: staging/' "$1"`));
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stderr, /If-Match/);
  const now = await t.store.get({ kind: 'vm', idOrName: 'ed-1' });
  assert.deepEqual(now.metadata, { touched: true });
  assert.deepEqual(now.labels, { env: 'prod' });
});
