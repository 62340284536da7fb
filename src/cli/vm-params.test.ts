import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { AnyObject } from '../api/object.ts';
import { buildTestApp, testToken, type TestApp } from '../server/test-app.ts';
import { runCaptured } from './captured-io.ts';

let t: TestApp;
let env: Record<string, string>;

before(async () => {
  t = await buildTestApp({ nodes: true });
  await t.seed();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  env = { CROWD_URL: `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`, CROWD_TOKEN: testToken, CROWD_CONFIG: '/nonexistent/crowd-config.yaml' };
});
after(async () => t.close());

test('vm create takes public, private and secret OS parameters; the secret is sent but never stored, the private one never shown', async () => {
  const run = await runCaptured(
    ['vm', 'create', 'db', '--image', 'debian', '--machine-type', 'small', '--param', 'tz=UTC', '--private-param', 'dsn=pg://x', '--secret-param', 'root=hunter2', '-o', 'json'],
    { env },
  );
  assert.equal(run.code, 0, run.stderr);
  const shown = JSON.parse(run.stdout) as AnyObject;
  assert.deepEqual((shown.spec as { install: unknown }).install, { mode: 'run', parameters: { tz: 'UTC' }, privateParameters: { dsn: '[private]' } });
  assert.ok(!run.stdout.includes('hunter2') && !run.stdout.includes('pg://x'));
  const stored = await t.store.get({ kind: 'vm', idOrName: 'db' });
  assert.deepEqual((stored.spec as { install: { privateParameters: unknown } }).install.privateParameters, { dsn: 'pg://x' });
  assert.ok(!JSON.stringify(stored).includes('hunter2'), 'the secret never reaches the store');
  const bad = await runCaptured(['vm', 'create', 'x', '--image', 'debian', '--machine-type', 'small', '--secret-param', 'novalue'], { env });
  assert.equal(bad.code, 2, 'a malformed flag is a usage error and sends nothing');
});
