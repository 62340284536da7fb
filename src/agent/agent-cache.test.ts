import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AnyObject } from '../api/object.ts';
import { AgentCache } from './agent-cache.ts';

function obj(kind: string, name: string, extra: Partial<AnyObject> = {}): AnyObject {
  return { kind, id: `${kind}-${name}`, name, project: 'default', revision: 1, labels: {}, metadata: {}, spec: {}, status: {}, ...extra } as AnyObject;
}

test('the agent cache gives back after a reopen exactly what it held, lists replaced as a whole and the outbox', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-agent-cache-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'cache.db');
  let cache = new AgentCache(path);
  cache.replaceAll(['vm', 'image'], [obj('vm', 'a'), obj('vm', 'b'), obj('image', 'debian')], 7);
  cache.put(obj('vm', 'a', { revision: 9, spec: { power: 'stopped' } }));
  cache.remove(obj('vm', 'b'));
  cache.setRevision(9);
  cache.queueStatus('vm-a', { phase: 'stopped' });
  cache.queueStatus('vm-a', { phase: 'running' });
  cache.close();

  cache = new AgentCache(path);
  t.after(() => cache.close());
  assert.deepEqual(cache.all('vm').map((v) => [v.name, v.revision, v.spec]), [['a', 9, { power: 'stopped' }]]);
  assert.equal(cache.get('image', 'default/debian')?.name, 'debian');
  assert.equal(cache.get('vm', 'vm-b'), undefined);
  assert.equal(cache.revision(), 9);
  assert.deepEqual(cache.pendingStatus(), [{ id: 'vm-a', status: { phase: 'running' } }], 'a newer report replaces an older one');
  cache.delivered('vm-a', { phase: 'stopped' });
  assert.equal(cache.pendingStatus().length, 1, 'delivering an older report keeps the newer one');
  cache.delivered('vm-a', { phase: 'running' });
  assert.deepEqual(cache.pendingStatus(), []);

  cache.replaceAll(['vm'], [obj('vm', 'c')], 12);
  assert.deepEqual(cache.all('vm').map((v) => v.name), ['c'], 'a relist drops VMs the server no longer binds here');
  assert.equal(cache.get('image', 'default/debian')?.name, 'debian', 'kinds not relisted stay');
});
