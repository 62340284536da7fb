import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { buildTestApp, testToken, type TestApp } from '../server/test-app.ts';

const entry = fileURLToPath(new URL('../crowd.ts', import.meta.url));
const repo = fileURLToPath(new URL('../..', import.meta.url));
let t: TestApp;
let url: string;

before(async () => {
  t = await buildTestApp();
  await t.seed();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
});
after(() => t.close());

/** Runs the real `crowd` entry point in a child process. */
function crowd(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', entry, ...args],
      { cwd: repo, env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

test('the crowd binary lists VMs from the server named in the environment', async () => {
  await t.store.create({ kind: 'vm', name: 'bin-1', spec: { image: 'debian', machineType: 'small' } }, { author: 'seed' });
  const r = await crowd(['vm', 'list'], { CROWD_URL: url, CROWD_TOKEN: testToken });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^NAME\s+IMAGE\s+TYPE\s+PHASE\s+NODE\s+REVISION\nbin-1\s+debian\s+small\s/);
});

test('the crowd binary exits non-zero with the API\'s message on an error', async () => {
  const r = await crowd(['vm', 'get', 'missing-vm'], { CROWD_URL: url, CROWD_TOKEN: testToken });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^Error: .*missing-vm/);
});
