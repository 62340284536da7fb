import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api/errors.ts';
import { FakeClock } from '../base/clock.ts';
import { NodeCredentialAuthenticator, renewalGraceMs } from '../auth/node-credential.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import { Enrolment } from './enrolment.ts';
import { buildTestApp } from './test-app.ts';

const host = (name: string, joinToken: string) => ({
  joinToken,
  name,
  arch: 'x86_64' as const,
  capacity: { cpus: 2, memoryMiB: 2048, diskGiB: 20 },
  accel: 'tcg' as const,
});

async function setup() {
  const clock = new FakeClock();
  const store = new SqliteStore({ path: ':memory:' });
  await store.create({ kind: 'site', name: 'default', spec: {} }, { author: 't' });
  const fingerprint = 'ab'.repeat(32);
  const enrolment = new Enrolment({ store, clock, fingerprint, credentialTtlMs: 3600_000 });
  const auth = new NodeCredentialAuthenticator((id) => store.getCredential(id), clock);
  const authAs = (cred: string) => auth.authenticate({ authorization: `Bearer ${cred}`, method: 'GET', path: '/v1/vms', source: '127.0.0.1' });
  return { clock, store, enrolment, authAs };
}

async function rejects(p: Promise<unknown>, code: string) {
  await assert.rejects(p, (e: ApiError) => e.code === code);
}

test('a join token enrols one host once, carries the server fingerprint and labels', async () => {
  const { store, enrolment, authAs } = await setup();
  const { token } = await enrolment.createJoinToken({ labels: { rack: 'r1' } }, 'admin');
  assert.match(token, new RegExp(`^crowdjoin\\.[0-9A-Z]{26}\\.[A-Za-z0-9_-]{43}\\.${'ab'.repeat(32)}$`));
  const out = await enrolment.enrol({ ...host('h1', token), labels: { gpu: 'no' } });
  const node = await store.get({ kind: 'node', idOrName: 'h1' });
  assert.deepEqual(node.labels, { rack: 'r1', gpu: 'no' });
  assert.equal((node.status as { accel: string }).accel, 'tcg');
  const who = await authAs(out.credential);
  assert.deepEqual(who, { outcome: 'ok', identity: { name: 'node:h1', authenticator: 'node-credential', node: 'h1' } });
  await rejects(enrolment.enrol(host('h2', token)), 'unauthenticated');
});

test('expired, forged and malformed join tokens are refused and create nothing', async () => {
  const { clock, store, enrolment } = await setup();
  const { token } = await enrolment.createJoinToken({ ttlSeconds: 60 }, 'admin');
  const forged = token.replace(/\.([A-Za-z0-9_-]{43})\./, (_m, s: string) => `.${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}.`);
  await rejects(enrolment.enrol(host('h1', forged)), 'unauthenticated');
  await rejects(enrolment.enrol(host('h1', 'crowdjoin.garbage')), 'unauthenticated');
  clock.advance(61_000);
  await rejects(enrolment.enrol(host('h1', token)), 'unauthenticated');
  await rejects(store.get({ kind: 'node', idOrName: 'h1' }), 'not_found');
  await rejects(enrolment.createJoinToken({ site: 'nowhere' }, 'admin'), 'invalid');
});

test('revoking one node invalidates only its credentials', async () => {
  const { enrolment, authAs } = await setup();
  const a = await enrolment.enrol(host('a', (await enrolment.createJoinToken({}, 'admin')).token));
  const b = await enrolment.enrol(host('b', (await enrolment.createJoinToken({}, 'admin')).token));
  const renewed = await enrolment.renew('a');
  await enrolment.revoke('a', 'admin');
  assert.equal((await authAs(a.credential)).outcome, 'deny');
  assert.equal((await authAs(renewed.credential)).outcome, 'deny');
  assert.equal((await authAs(b.credential)).outcome, 'ok');
  await rejects(enrolment.renew('a'), 'forbidden');
});

test('node credentials expire unless renewed', async () => {
  const { clock, enrolment, authAs } = await setup();
  const a = await enrolment.enrol(host('a', (await enrolment.createJoinToken({}, 'admin')).token));
  clock.advance(1800_000);
  const fresh = await enrolment.renew('a');
  clock.advance(1800_001);
  const expired = await authAs(a.credential);
  assert.ok(expired.outcome === 'ok' && expired.identity.renewalOnly, 'an expired credential may still renew itself, and only that');
  const current = await authAs(fresh.credential);
  assert.ok(current.outcome === 'ok' && !current.identity.renewalOnly);
  assert.equal((await authAs('crowdnode.nonsense')).outcome, 'deny');
  clock.advance(renewalGraceMs);
  assert.equal((await authAs(a.credential)).outcome, 'deny', 'past the renewal grace it is refused');
});

test('a host back after its credential expired renews it, and can do nothing else with the old one', async () => {
  const clock = new FakeClock();
  const t = await buildTestApp({ nodes: true, clock });
  try {
    await t.seed();
    const old = await t.enrol('far-away');
    clock.advance(25 * 3600 * 1000);
    const as = (authorization: string, method: 'GET' | 'POST', url: string) => t.app.inject({ method, url, headers: { authorization } });
    assert.equal((await as(old, 'GET', '/v1/vms?project=*')).statusCode, 401);
    assert.equal((await as(old, 'POST', '/v1/nodes/other-host/credential')).statusCode, 401, 'not even another node\'s renewal');
    const renewed = await as(old, 'POST', '/v1/nodes/far-away/credential');
    assert.equal(renewed.statusCode, 200);
    assert.equal((await as(`Bearer ${renewed.json().credential}`, 'GET', '/v1/vms?project=*')).statusCode, 200);
    await t.app.inject({ method: 'POST', url: '/v1/nodes/far-away/revoke', headers: t.auth });
    assert.equal((await as(old, 'POST', '/v1/nodes/far-away/credential')).statusCode, 401, 'revocation ends the grace at once');
  } finally {
    await t.close();
  }
});
