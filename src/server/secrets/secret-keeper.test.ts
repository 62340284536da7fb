import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AnyObject, Condition } from '../../api/object.ts';
import { buildTestApp } from '../test-app.ts';

const vm = { name: 'db', spec: { image: 'debian', machineType: 'small' }, secretParameters: { rootPassword: 'S3cr3t-a81' } };

function secretsCondition(o: AnyObject): Condition | undefined {
  return (o.status as { conditions?: Condition[] }).conditions?.find((c) => c.type === 'SecretsDelivered');
}

test('a server without agent tunnels refuses secret parameters and stores nothing', async () => {
  const t = await buildTestApp();
  try {
    await t.seed();
    const res = await t.app.inject({ method: 'POST', url: '/v1/vms', headers: t.auth, payload: vm });
    assert.equal(res.statusCode, 400, res.body);
    assert.match(res.body, /secretParameters/);
    assert.ok(!res.body.includes('S3cr3t-a81'));
    assert.equal((await t.store.list({ kind: 'vm', project: 'default' })).items.length, 0);
  } finally {
    await t.close();
  }
});

test('secrets of a VM no host runs yet wait as Pending and never reach the spec or the answer', async () => {
  const t = await buildTestApp({ nodes: true });
  try {
    await t.seed();
    const res = await t.app.inject({ method: 'POST', url: '/v1/vms', headers: t.auth, payload: vm });
    assert.equal(res.statusCode, 201, res.body);
    assert.ok(!res.body.includes('S3cr3t-a81'));
    const stored = await t.store.get({ kind: 'vm', idOrName: 'db' });
    assert.equal(secretsCondition(stored)?.reason, 'Pending');
    assert.ok(!JSON.stringify(await t.store.history({ kind: 'vm', idOrName: 'db' }, {})).includes('S3cr3t-a81'));
    const other = await t.app.inject({ method: 'POST', url: '/v1/networks', headers: t.auth, payload: { name: 'n2', spec: { ipv4: { subnet: '10.1.0.0/24' } }, secretParameters: { a: 'b' } } });
    assert.equal(other.statusCode, 400, 'only VMs take secret parameters');
  } finally {
    await t.close();
  }
});
