import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { buildTestApp, testToken, type TestApp } from '../server/test-app.ts';
import { runCaptured, type RunOptions } from './captured-io.ts';

let t: TestApp;
let env: Record<string, string>;

before(async () => {
  t = await buildTestApp();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  env = { CROWD_URL: `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`, CROWD_TOKEN: testToken, CROWD_CONFIG: '/nonexistent/c.yaml' };
});
after(() => t.close());

const crowd = (argv: string[], opts: RunOptions = {}) => runCaptured(argv, { env, ...opts });

// Written in the "wrong" order on purpose: apply sorts so references resolve.
const stack = `
kind: vm
name: app-1
labels: {tier: app}
spec:
  image: debian-12
  machineType: small
  nics: [{network: backend, firewalls: [app]}]
---
kind: network
name: backend
spec:
  ipv4: {subnet: 10.20.0.0/24, gateway: 10.20.0.1}
  firewalls: [app]
---
kind: firewall
name: app
spec:
  rules:
    - {direction: ingress, action: accept, protocol: tcp, ports: ["8080"], remote: {firewall: edge}}
---
kind: firewall
name: edge
spec:
  rules: [{direction: ingress, action: accept, protocol: tcp, ports: ["443"]}]
---
kind: image
name: debian-12
spec: {os: debian-12}
---
kind: machine-type
name: small
spec: {cpus: 1, memoryMiB: 512, diskGiB: 10, ranges: {cpus: {min: 1, max: 4}}}
`;

test('apply creates every document in an order where references resolve', async () => {
  const r = await crowd(['apply', '-f', '-'], { stdin: stack });
  assert.equal(r.code, 0, r.stderr);
  const order = r.stdout.trim().split('\n').slice(0, -1).map((l) => l.replace(/ in project "default"/, '').replace(/ created \(revision \d+\)$/, ''));
  assert.deepEqual(order, ['machine-type "small"', 'image "debian-12"', 'firewall "edge"', 'firewall "app"', 'network "backend"', 'vm "app-1"']);
  assert.match(r.stdout, /6 objects: 6 created, 0 updated, 0 unchanged\n$/);
  const vm = await t.store.get({ kind: 'vm', idOrName: 'app-1' });
  assert.deepEqual(vm.labels, { tier: 'app' });
});

test('applying the same file twice writes nothing the second time', async () => {
  const before = await t.store.revision();
  const r = await crowd(['apply', '-f', '-'], { stdin: stack });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /6 objects: 0 created, 0 updated, 6 unchanged/);
  assert.equal(await t.store.revision(), before);
});

test('apply --dry-run prints the diff per object and writes nothing', async () => {
  const before = await t.store.revision();
  const changed = stack.replace('labels: {tier: app}', 'labels: {tier: app, env: prod}').replace('cpus: 1, memoryMiB', 'cpus: 2, memoryMiB') + '---\nkind: image\nname: alpine\nspec: {}\n';
  const r = await crowd(['apply', '-f', '-', '--dry-run'], { stdin: changed });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /machine-type "small": would be updated\n  ~ \/spec\/cpus: 1 -> 2\n/);
  assert.match(r.stdout, /vm "app-1" in project "default": would be updated\n  \+ \/labels\/env: "prod"\n/);
  assert.match(r.stdout, /image "alpine" in project "default": would be created\n  \+ \/spec: \{\}\n/);
  assert.match(r.stdout, /network "backend" in project "default": unchanged\n/);
  assert.match(r.stdout, /Dry run: nothing written\.\n$/);
  assert.equal(await t.store.revision(), before);
  const applied = await crowd(['apply', '-f', '-', '--reason', 'resize'], { stdin: changed });
  assert.match(applied.stdout, /7 objects: 1 created, 2 updated, 4 unchanged/);
  const h = await t.store.history({ kind: 'machine-type', idOrName: 'small' });
  assert.equal(h.items[0]!.reason, 'resize');
});

test('a bad document names its index and path, and nothing is written', async () => {
  const before = await t.store.revision();
  const cases: [string, RegExp][] = [
    ['kind: image\nname: ok-1\nspec: {}\n---\nkind: vm\nname: bad\nspec: {image: debian-12}\n', /document 2 .*\/spec\/machineType/],
    ['kind: image\nname: ok-1\nspec: {}\n---\nkind: gizmo\nname: x\nspec: {}\n', /document 2 .*\/kind/],
    ['kind: image\nname: Not_A_Label\nspec: {}\n', /document 1 .*\/name/],
    ['kind: image\nname: ok-1\nspec: {}\n---\nkind: image\nname: ok-1\nspec: {}\n', /document 2 .*already in document 1/],
    ['kind: image\nname: ok-1\nspec: {}\n---\n: : [\n', /document 2/],
    ['kind: image\nname: ok-1\nspec: {}\n---\nkind: vm\nname: v\nspec: {image: missing, machineType: small}\n', /document 2 .*\/spec\/image.*does not exist/],
    ['kind: image\nname: ok-1\nspec: {}\n---\nkind: vm\nname: v\nspec: {image: ok-1, machineType: small, resources: {cpus: 16}}\n', /document 2 .*\/spec\/resources\/cpus/],
    ['kind: image\nname: ok-1\nspec: {}\n---\nkind: network\nname: clash\nspec: {ipv4: {subnet: 10.20.0.0/16}}\n', /document 2 .*\/spec\/ipv4\/subnet.*overlaps/],
    ['kind: network\nname: n\nspec: {ipv4: {subnet: 10.30.0.0/24, gateway: 10.31.0.1}}\n', /document 1 .*\/spec\/ipv4\/gateway/],
    ['- just\n- a list\n', /document 1 .*mapping/],
  ];
  for (const [text, want] of cases) {
    const r = await crowd(['apply', '-f', '-'], { stdin: text });
    assert.equal(r.code, 1, `expected failure for:\n${text}\n${r.stdout}`);
    assert.match(r.stderr, want);
    assert.equal(r.stdout, '');
  }
  assert.equal(await t.store.revision(), before);
});

test('apply reads a file path, and a missing file is an error', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(join(tmpdir(), 'crowd-apply-'));
  try {
    await writeFile(join(dir, 'p.yaml'), 'kind: project\nname: from-file\nspec: {description: x}\n');
    const r = await crowd(['apply', '-f', join(dir, 'p.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /project "from-file" created/);
    const missing = await crowd(['apply', '-f', join(dir, 'nope.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /Cannot read ".*nope\.yaml": no such file/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
