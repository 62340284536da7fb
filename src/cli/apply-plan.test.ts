import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AnyObject } from '../api/object.ts';
import { orderForApply, planChange, readApplyDocs, type ApplyDoc } from './apply-plan.ts';
import { parseDocuments } from './documents.ts';

const docs = (text: string) => readApplyDocs(parseDocuments(text, 'f.yaml'), 'f.yaml');

function live(doc: ApplyDoc, changes: Partial<AnyObject> = {}): AnyObject {
  return {
    kind: doc.kind, id: 'x_1', name: doc.name, project: doc.project, labels: doc.labels, metadata: doc.metadata, spec: doc.spec,
    status: { phase: 'running' }, revision: 7, createdAt: 't', updatedAt: 't', updatedBy: 'a', ...changes,
  } as AnyObject;
}

test('documents default to the given project, cluster kinds get none, and read-only fields are ignored', () => {
  const [vm, mt] = docs('kind: vm\nname: a\nid: vm_1\nrevision: 3\nstatus: {phase: running}\nspec: {image: i, machineType: m}\n---\nkind: machine-type\nname: m\nproject: ignored\nspec: {cpus: 1, memoryMiB: 64, diskGiB: 1}\n');
  assert.equal(vm!.project, 'default');
  assert.deepEqual(vm!.labels, {});
  assert.equal(mt!.project, undefined);
  assert.equal(readApplyDocs(parseDocuments('kind: image\nname: x\nspec: {}\n', 'f'), 'f', 'team')[0]!.project, 'team');
});

test('every bad document is listed in the details, the first one in the message', () => {
  assert.throws(
    () => docs('kind: image\nname: A\nspec: {}\n---\nkind: image\nname: ok\nspec: {}\n---\nkind: image\nname: b\nspec: {bogus: 1}\n'),
    (e: Error & { details?: { path: string }[] }) => {
      assert.match(e.message, /^Invalid document 1 in "f\.yaml": \/name: /);
      assert.deepEqual(e.details!.map((d) => d.path), ['document 1/name', 'document 3/spec/bogus']);
      return true;
    },
  );
});

test('documents are ordered by kind, then by references within a kind, then by file order', () => {
  const ordered = orderForApply(
    docs(`
kind: vm
name: v
spec: {image: i, machineType: m}
---
kind: firewall
name: b
spec: {rules: [{direction: ingress, action: accept, remote: {firewall: c}}]}
---
kind: firewall
name: a
spec: {rules: []}
---
kind: firewall
name: c
spec: {rules: []}
---
kind: project
name: p
spec: {}
`),
  );
  assert.deepEqual(ordered.map((d) => `${d.kind}/${d.name}`), ['project/p', 'firewall/c', 'firewall/b', 'firewall/a', 'vm/v']);
});

test('a document equal to the live object is unchanged, and any difference is an update with its diff', () => {
  const [doc] = docs('kind: vm\nname: v\nlabels: {env: prod}\nspec: {image: i, machineType: m}\n');
  assert.equal(planChange(doc!, undefined).action, 'create');
  assert.deepEqual(planChange(doc!, live(doc!)), { doc, action: 'unchanged', current: live(doc!), changes: [] });
  const p = planChange(doc!, live(doc!, { labels: { env: 'dev' }, metadata: { old: true } }));
  assert.equal(p.action, 'update');
  assert.deepEqual(p.changes, [
    { op: 'replace', path: '/labels/env', from: 'dev', to: 'prod' },
    { op: 'remove', path: '/metadata/old', from: true },
  ]);
});

test('a VXLAN id the server assigned is kept when the document leaves it out', () => {
  const [doc] = docs('kind: network\nname: n\nspec: {ipv4: {subnet: 10.0.0.0/24}}\n');
  const current = live(doc!, { spec: { ipv4: { subnet: '10.0.0.0/24' }, vni: 4242 } });
  assert.equal(planChange(doc!, current).action, 'unchanged');
  const [pinned] = docs('kind: network\nname: n\nspec: {ipv4: {subnet: 10.0.0.0/24}, vni: 7}\n');
  assert.deepEqual(planChange(pinned!, current).changes, [{ op: 'replace', path: '/spec/vni', from: 4242, to: 7 }]);
});
