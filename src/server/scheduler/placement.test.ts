import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Placement, type NodeInfo } from './placement.ts';

function node(name: string, extra: Partial<NodeInfo> = {}): NodeInfo {
  return { name, site: 'a', arch: 'x86_64', labels: {}, cpus: 4, memoryMiB: 4096, cpuRatio: 1, memoryRatio: 1, schedulable: true, ...extra };
}

test('a VM lands on a node that fits its CPU and memory', () => {
  const p = new Placement();
  p.setNode(node('small', { cpus: 1, memoryMiB: 512 }));
  p.setNode(node('big'));
  assert.deepEqual(p.place({ cpus: 2, memoryMiB: 1024 }), { ok: true, node: 'big' });
});

test('capacity is used up and an overcommit ratio stretches it', () => {
  const p = new Placement();
  p.setNode(node('n', { cpus: 2 }));
  assert.equal(p.place({ cpus: 2, memoryMiB: 100 }).ok, true);
  const full = p.place({ cpus: 1, memoryMiB: 100 });
  assert.deepEqual(full, { ok: false, reason: '0 of 1 nodes fit: 1 without enough free CPUs' });
  p.setNode(node('n', { cpus: 2, cpuRatio: 2 }));
  assert.equal(p.place({ cpus: 2, memoryMiB: 100 }).ok, true);
});

test('released VMs give their capacity back', () => {
  const p = new Placement();
  p.setNode(node('n', { memoryMiB: 1024 }));
  const req = { cpus: 1, memoryMiB: 1024 };
  assert.equal(p.place(req).ok, true);
  assert.equal(p.place(req).ok, false);
  p.account('n', req, -1);
  assert.equal(p.place(req).ok, true);
});

test('site, arch, required labels and a named node are honoured, with reasons when nothing fits', () => {
  const p = new Placement();
  p.setNode(node('a1', { labels: { ssd: 'yes' } }));
  p.setNode(node('b1', { site: 'b' }));
  p.setNode(node('arm', { arch: 'aarch64' }));
  p.setNode(node('off', { schedulable: false }));
  assert.deepEqual(p.place({ cpus: 1, memoryMiB: 1, site: 'b' }), { ok: true, node: 'b1' });
  assert.deepEqual(p.place({ cpus: 1, memoryMiB: 1, arch: 'aarch64' }), { ok: true, node: 'arm' });
  assert.deepEqual(p.place({ cpus: 1, memoryMiB: 1, requiredLabels: { ssd: 'yes' } }), { ok: true, node: 'a1' });
  assert.deepEqual(p.place({ cpus: 1, memoryMiB: 1, node: 'arm' }), { ok: true, node: 'arm' });
  assert.deepEqual(p.place({ cpus: 1, memoryMiB: 1, node: 'off' }), { ok: false, reason: 'node "off" is not schedulable' });
  assert.deepEqual(p.place({ cpus: 1, memoryMiB: 1, node: 'ghost' }), { ok: false, reason: 'node "ghost" does not exist' });
  const none = p.place({ cpus: 1, memoryMiB: 1, site: 'b', requiredLabels: { ssd: 'yes' } });
  assert.equal(none.ok, false);
  assert.match((none as { reason: string }).reason, /^0 of 4 nodes fit: .*1 missing required labels/);
});

test('VMs sharing a spread key go to different nodes while they can', () => {
  const p = new Placement();
  for (const n of ['n1', 'n2', 'n3']) p.setNode(node(n));
  const placed = Array.from({ length: 3 }, () => p.place({ cpus: 1, memoryMiB: 1, spreadKey: 'web' }));
  assert.deepEqual(new Set(placed.map((r) => (r.ok ? r.node : ''))).size, 3);
  const fourth = p.place({ cpus: 1, memoryMiB: 1, spreadKey: 'web' });
  assert.equal(fourth.ok, true, 'a fourth still fits, doubling up');
});

test('preferred labels win among nodes that fit', () => {
  const p = new Placement();
  p.setNode(node('plain'));
  p.setNode(node('fast', { labels: { cpu: 'fast' } }));
  for (let i = 0; i < 5; i++)
    assert.deepEqual(p.place({ cpus: 0, memoryMiB: 0, preferredLabels: { cpu: 'fast' } }), { ok: true, node: 'fast' });
});

test('a decision on a large cluster looks at a bounded number of nodes and still fills them all', () => {
  const p = new Placement({ candidates: 4 });
  for (let i = 0; i < 1000; i++) p.setNode(node(`n${i}`, { cpus: 1, memoryMiB: 1024 }));
  let ok = 0;
  for (let i = 0; i < 1000; i++) if (p.place({ cpus: 1, memoryMiB: 512 }).ok) ok++;
  assert.equal(ok, 1000);
  assert.equal(p.place({ cpus: 1, memoryMiB: 512 }).ok, false);
});
