import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { parseJoinToken } from '../../api/enrolment.ts';
import { buildTestApp, testToken } from '../../server/test-app.ts';
import { runCaptured } from '../captured-io.ts';
import { ttlFlag } from './node.ts';

test('node join-token prints a one-time token with the asked labels and lifetime; node revoke locks the node out', async (t) => {
  const app = await buildTestApp({ nodes: true });
  t.after(() => app.close());
  await app.app.listen({ host: '127.0.0.1', port: 0 });
  const env = { CROWD_URL: `http://127.0.0.1:${(app.app.server.address() as AddressInfo).port}`, CROWD_TOKEN: testToken, CROWD_CONFIG: '/nonexistent/crowd.yaml' };
  const crowd = (...argv: string[]) => runCaptured(argv, { env });

  const before = Date.now();
  const made = await crowd('node', 'join-token', '--label', 'rack=r1', '--ttl', '10m');
  assert.equal(made.code, 0, made.stderr);
  const token = made.stdout.trim();
  assert.ok(parseJoinToken(token), `"${token}" is a join token`);
  assert.match(made.stderr, /valid until/);
  const json = await crowd('node', 'join-token', '--ttl', '2h', '-o', 'json');
  const expires = Date.parse((JSON.parse(json.stdout) as { expiresAt: string }).expiresAt);
  assert.ok(expires >= before + 2 * 3600_000 && expires <= Date.now() + 2 * 3600_000);

  const out = await app.enrolment!.enrol({ joinToken: token, name: 'host-1', arch: 'x86_64', capacity: { cpus: 2, memoryMiB: 2048, diskGiB: 10 }, accel: 'tcg' });
  const node = await app.store.get({ kind: 'node', idOrName: 'host-1' });
  assert.deepEqual(node.labels, { rack: 'r1' });
  const asNode = () => app.app.inject({ method: 'GET', url: '/v1/nodes/host-1', headers: { authorization: `Bearer ${out.credential}` } });
  assert.equal((await asNode()).statusCode, 200);

  const revoked = await crowd('node', 'revoke', 'host-1');
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.equal(revoked.stdout, 'node "host-1" revoked\n');
  assert.equal((await asNode()).statusCode, 401);
  assert.equal((await app.store.get({ kind: 'node', idOrName: 'host-1' })).status.phase, 'revoked');
});

test('node join-token refuses a bad --ttl, an unknown site and a lifetime out of range; revoke of an unknown node is not_found', async (t) => {
  const app = await buildTestApp({ nodes: true });
  t.after(() => app.close());
  await app.app.listen({ host: '127.0.0.1', port: 0 });
  const env = { CROWD_URL: `http://127.0.0.1:${(app.app.server.address() as AddressInfo).port}`, CROWD_TOKEN: testToken, CROWD_CONFIG: '/nonexistent/crowd.yaml' };
  const crowd = (...argv: string[]) => runCaptured(argv, { env });

  const badTtl = await crowd('node', 'join-token', '--ttl', 'soon');
  assert.equal(badTtl.code, 2);
  assert.match(badTtl.stderr, /Invalid --ttl "soon"/);
  const site = await crowd('node', 'join-token', '--site', 'nowhere');
  assert.equal(site.code, 1);
  assert.match(site.stderr, /site "nowhere" does not exist/);
  const long = await crowd('node', 'join-token', '--ttl', '30d');
  assert.equal(long.code, 1);
  assert.match(long.stderr, /ttlSeconds/);
  const unknown = await crowd('node', 'revoke', 'ghost');
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /ghost/);
});

test('--ttl takes plain seconds or a unit', () => {
  assert.equal(ttlFlag('90'), 90);
  assert.equal(ttlFlag('90s'), 90);
  assert.equal(ttlFlag('30m'), 1800);
  assert.equal(ttlFlag('2h'), 7200);
  assert.equal(ttlFlag('1d'), 86400);
  assert.throws(() => ttlFlag('1w'), /Invalid --ttl "1w"/);
  assert.throws(() => ttlFlag('-5m'), /Invalid --ttl/);
});
