import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import YAML from 'yaml';
import { buildTestApp, testToken, type TestApp } from '../server/test-app.ts';
import { runCaptured, type RunOptions } from './captured-io.ts';

let t: TestApp;
let env: Record<string, string>;

before(async () => {
  t = await buildTestApp();
  await t.seed();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  env = { CROWD_URL: url, CROWD_TOKEN: testToken, CROWD_CONFIG: '/nonexistent/crowd-config.yaml' };
});
after(() => t.close());

const crowd = (argv: string[], opts: RunOptions = {}) => runCaptured(argv, { env, ...opts });

async function ok(argv: string[], opts: RunOptions = {}): Promise<string> {
  const r = await crowd(argv, opts);
  assert.equal(r.code, 0, `crowd ${argv.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const vmFlags = ['--image', 'debian', '--machine-type', 'small', '--network', 'lan'];

test('vm create from flags writes the spec the flags describe', async () => {
  const out = await ok(['vm', 'create', 'web-1', ...vmFlags, '--cpus', '2', '--label', 'env=prod', '--label', 'tier=web', '--metadata-json', '{"team":"infra"}']);
  assert.match(out, /^vm "web-1" created \(revision \d+\)\n$/);
  const vm = JSON.parse(await ok(['vm', 'get', 'web-1', '-o', 'json']));
  assert.deepEqual(vm.spec, { image: 'debian', machineType: 'small', resources: { cpus: 2 }, nics: [{ network: 'lan' }] });
  assert.deepEqual(vm.labels, { env: 'prod', tier: 'web' });
  assert.deepEqual(vm.metadata, { team: 'infra' });
});

test('vm list filters with -l and --where and prints table, json and yaml', async () => {
  await ok(['vm', 'create', 'db-1', ...vmFlags, '--label', 'env=prod', '--label', 'tier=db', '--network', 'lan,ipv4=10.0.0.9']);
  await ok(['vm', 'create', 'dev-1', ...vmFlags, '--label', 'env=dev', '--power', 'stopped']);
  const table = await ok(['vm', 'list', '-l', 'env=prod']);
  const lines = table.trimEnd().split('\n');
  assert.match(lines[0]!, /^NAME\s+IMAGE\s+TYPE\s+PHASE\s+NODE\s+REVISION$/);
  assert.deepEqual(lines.slice(1).map((l) => l.split(/\s+/)[0]).sort(), ['db-1', 'web-1']);
  const json = JSON.parse(await ok(['vm', 'list', '-l', 'env=prod,tier notin (web)', '-o', 'json']));
  assert.deepEqual(json.map((v: { name: string }) => v.name), ['db-1']);
  const yaml = YAML.parseAllDocuments(await ok(['vm', 'list', '--where', 'spec.power=stopped', '-o', 'yaml'])).map((d) => d.toJS());
  assert.deepEqual(yaml.map((v) => v.name), ['dev-1']);
  assert.equal((await ok(['vm', 'list', '-l', 'env=none'])).trim(), 'No objects found.');
});

test('history, diff, get --revision and rollback follow a VM through its revisions', async () => {
  const v1 = JSON.parse(await ok(['vm', 'create', 'hist-1', ...vmFlags, '-o', 'json']));
  const r = await crowd(['vm', 'create', 'hist-1', ...vmFlags]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /already/i);
  await t.store.update({ kind: 'vm', idOrName: 'hist-1' }, { labels: {}, metadata: {}, spec: { ...v1.spec, power: 'stopped' } }, { author: 'alice', reason: 'maintenance' });
  const history = await ok(['vm', 'history', 'hist-1']);
  assert.match(history, /^REVISION\s+OP\s+AUTHOR\s+TIME\s+REASON\n/);
  assert.match(history, /put\s+alice\s+\S+\s+maintenance/);
  const diff = await ok(['vm', 'diff', 'hist-1', '--from', String(v1.revision)]);
  assert.match(diff, /\+ \/spec\/power: "stopped"/);
  const old = YAML.parse(await ok(['vm', 'get', 'hist-1', '--revision', String(v1.revision), '-o', 'yaml']));
  assert.equal(old.spec.power, undefined);
  const rolled = await ok(['vm', 'rollback', 'hist-1', '--to', String(v1.revision), '--reason', 'undo']);
  assert.match(rolled, new RegExp(`rolled back to revision ${v1.revision} \\(now revision \\d+\\)`));
  const now = JSON.parse(await ok(['vm', 'get', 'hist-1', '-o', 'json']));
  assert.equal(now.spec.power, undefined);
  const entries = JSON.parse(await ok(['vm', 'history', 'hist-1', '-o', 'json']));
  assert.match(entries[0].reason, /undo/);
  assert.equal(entries.length, 3);
});

test('watch prints events from a revision until interrupted', async () => {
  const start = JSON.parse(await ok(['vm', 'get', 'web-1', '-o', 'json'])).revision;
  const ac = new AbortController();
  let seen = '';
  const watching = crowd(['vm', 'watch', '--revision', String(start), '-l', 'watched=yes'], {
    signal: ac.signal,
    onStdout: (s) => {
      seen += s;
      if (/delete\tvm "w-2"/.test(seen)) ac.abort();
    },
  });
  await ok(['vm', 'create', 'w-1', ...vmFlags]);
  await ok(['vm', 'create', 'w-2', ...vmFlags, '--label', 'watched=yes']);
  await ok(['vm', 'delete', 'w-2']);
  const r = await watching;
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.deepEqual(lines.map((l) => l.split('\t').slice(1).join(' ')), ['put vm "w-2" in project "default"', 'delete vm "w-2" in project "default"']);
});

test('delete removes the object and a second delete is a not_found error', async () => {
  await ok(['vm', 'create', 'gone-1', ...vmFlags]);
  assert.equal(await ok(['vm', 'delete', 'gone-1', '--reason', 'cleanup']), 'vm "gone-1" deleted\n');
  const r = await crowd(['vm', 'delete', 'gone-1']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^Error: .*gone-1/);
});

test('API errors print the message and detail paths to stderr and exit 1', async () => {
  const r = await crowd(['vm', 'create', 'bad-1', '--image', 'nope', '--machine-type', 'small']);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^Error: .*nope/);
  assert.match(r.stderr, /\/spec\/image/);
  const range = await crowd(['vm', 'create', 'bad-2', ...vmFlags, '--cpus', '64']);
  assert.equal(range.code, 1);
  assert.match(range.stderr, /\/spec\/resources\/cpus/);
  const json = JSON.parse(await ok(['vm', 'list', '-o', 'json']));
  assert.ok(!json.some((v: { name: string }) => v.name.startsWith('bad-')));
});

test('usage errors exit 2 and send nothing', async () => {
  const before = JSON.parse(await ok(['vm', 'list', '-o', 'json'])).length;
  const cases: string[][] = [
    ['vm', 'list', '-l', 'env in ('],
    ['vm', 'list', '--where', 'labels.env=prod'],
    ['vm', 'list', '-o', 'xml'],
    ['vm', 'create', 'u-1', '--machine-type', 'small'],
    ['vm', 'create', 'u-2', ...vmFlags, '--cpus', 'many'],
    ['vm', 'create', 'u-3', ...vmFlags, '--network', 'lan,speed=fast'],
    ['vm', 'frobnicate'],
    ['network', 'create', 'n-1', '--dhcp-range', '10.0.0.5'],
    ['machine-type', 'create', 'm-1', '--cpus', '1', '--memory', '1GiB', '--disk', '5', '--range', 'cpus=4'],
    [],
  ];
  for (const argv of cases) {
    const r = await crowd(argv);
    assert.equal(r.code, 2, `crowd ${argv.join(' ')}: ${r.stderr}`);
    assert.notEqual(r.stderr, '', `crowd ${argv.join(' ')} printed no error`);
  }
  assert.equal(JSON.parse(await ok(['vm', 'list', '-o', 'json'])).length, before);
});

test('a wrong token is unauthenticated and the token never appears in the output', async () => {
  const secret = 'crowd_very-secret-wrong-token';
  const r = await crowd(['vm', 'list', '--token', secret]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^Error: /);
  assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret));
  const unreachable = await crowd(['vm', 'list', '--server', 'http://127.0.0.1:1']);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /Cannot reach server "http:\/\/127\.0\.0\.1:1"/);
  assert.ok(!unreachable.stderr.includes(testToken));
});

test('every noun creates from its own flags', async () => {
  await ok(['project', 'create', 'team-a', '--description', 'team A']);
  await ok(['site', 'create', 'eu-1', '--region', 'eu-west']);
  await ok(['node', 'create', 'host-1', '--site', 'eu-1', '--cpus', '8', '--memory', '16GiB', '--disk', '100']);
  await ok(['image', 'create', 'ubuntu', '--os', 'ubuntu-24.04', '--arch', 'x86_64', '--cloud-init', '--project', 'team-a']);
  await ok(['machine-type', 'create', 'large', '--cpus', '4', '--memory', '8192', '--disk', '40', '--range', 'cpus=2-8']);
  await ok(['firewall', 'create', 'web', '--rule', 'ingress accept tcp 80,443 0.0.0.0/0', '--rule', 'ingress drop']);
  await ok(['network', 'create', 'dmz', '--subnet', '10.9.0.0/24', '--gateway', '10.9.0.1', '--dhcp-range', '10.9.0.100-10.9.0.200', '--firewall', 'web']);
  const node = JSON.parse(await ok(['node', 'get', 'host-1', '-o', 'json']));
  assert.deepEqual(node.spec, { site: 'eu-1', arch: 'x86_64', capacity: { cpus: 8, memoryMiB: 16384, diskGiB: 100 } });
  const net = JSON.parse(await ok(['network', 'get', 'dmz', '-o', 'json']));
  assert.deepEqual(net.spec.ipv4, { subnet: '10.9.0.0/24', gateway: '10.9.0.1', dhcp: { start: '10.9.0.100', end: '10.9.0.200' } });
  const fw = JSON.parse(await ok(['firewall', 'get', 'web', '-o', 'json']));
  assert.deepEqual(fw.spec.rules, [
    { direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['80', '443'], remote: { cidrs: ['0.0.0.0/0'] } },
    { direction: 'ingress', action: 'drop' },
  ]);
  const mt = JSON.parse(await ok(['machine-type', 'get', 'large', '-o', 'json']));
  assert.deepEqual(mt.spec, { cpus: 4, memoryMiB: 8192, diskGiB: 40, ranges: { cpus: { min: 2, max: 8 } } });
  const images = await ok(['image', 'list', '-A']);
  assert.match(images, /^NAME\s+PROJECT\s+OS\s+ARCH\s+PHASE\s+REVISION\n/);
  assert.match(images, /ubuntu\s+team-a\s+ubuntu-24\.04\s+x86_64/);
  assert.equal((await ok(['network', 'delete', 'dmz'])).trim(), 'network "dmz" deleted');
});

test('create -f reads a YAML object from stdin, and get -o yaml output can be created again under a new name', async () => {
  const doc = 'kind: vm\nname: file-1\nlabels: {src: file}\nspec:\n  image: debian\n  machineType: small\n';
  assert.match(await ok(['vm', 'create', '-f', '-'], { stdin: doc }), /vm "file-1" created/);
  const yaml = await ok(['vm', 'get', 'file-1', '-o', 'yaml']);
  assert.match(await ok(['vm', 'create', 'file-2', '-f', '-'], { stdin: yaml }), /vm "file-2" created/);
  const wrongKind = await crowd(['network', 'create', '-f', '-'], { stdin: doc });
  assert.equal(wrongKind.code, 1);
  assert.match(wrongKind.stderr, /document 1 .*\/kind/);
});

test('audit shows the writes made through the CLI, newest first', async () => {
  await ok(['image', 'create', 'audit-img']);
  const table = await ok(['audit', '--limit', '1']);
  assert.match(table, /^ID\s+TIME\s+WHO\s+SOURCE\s+METHOD\s+PATH\s+STATUS\n\d+\s+\S+\s+admin\s+\S+\s+POST\s+\/v1\/images\S*\s+201\n$/);
});

test('crowd watch follows several kinds, and an unknown kind is refused before anything is sent', async () => {
  const start = (await t.store.revision());
  const ac = new AbortController();
  let seen = '';
  const watching = crowd(['watch', '--kinds', 'image,network', '--revision', String(start), '-o', 'json'], {
    signal: ac.signal,
    onStdout: (s) => {
      seen += s;
      if (/"gw-net"/.test(seen)) ac.abort();
    },
  });
  await ok(['image', 'create', 'gw-img']);
  await ok(['vm', 'create', 'gw-vm', ...vmFlags]);
  await ok(['network', 'create', 'gw-net', '--subnet', '10.77.0.0/24']);
  const r = await watching;
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type !== 'bookmark');
  assert.deepEqual(events.map((e) => `${e.type} ${e.object.kind}/${e.object.name}`), ['put image/gw-img', 'put network/gw-net']);
  const bad = await crowd(['watch', '--kinds', 'vm,gizmo']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Unknown kind "gizmo" in --kinds/);
});
