import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { buildTestApp, testToken, type TestApp } from '../server/test-app.ts';
import { runCaptured } from './captured-io.ts';
import { configPath, readConfigFile, resolveSettings } from './config.ts';
import { UsageError } from './usage-error.ts';

let t: TestApp;
let url: string;
let dir: string;

before(async () => {
  t = await buildTestApp();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  dir = await mkdtemp(join(tmpdir(), 'crowd-config-test-'));
});
after(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

const file = { server: 'https://file.example:7443', token: 'file-token', fingerprint: `sha256:${'a'.repeat(64)}` };

test('flags win over the environment, which wins over the config file', () => {
  const env = { CROWD_URL: 'http://env.example', CROWD_TOKEN: 'env-token' };
  assert.deepEqual(resolveSettings({ server: 'http://flag.example', token: 'flag-token' }, env, file), { server: 'http://flag.example', token: 'flag-token' });
  assert.deepEqual(resolveSettings({}, env, file), { server: 'http://env.example', token: 'env-token' });
  assert.deepEqual(resolveSettings({}, {}, file), file);
  assert.deepEqual(resolveSettings({ token: 'flag-token' }, {}, file), { ...file, token: 'flag-token' });
});

test('the config file\'s token and pin are never used for another server', () => {
  assert.deepEqual(resolveSettings({ server: 'http://other.example' }, {}, file), { server: 'http://other.example' });
  assert.deepEqual(resolveSettings({}, { CROWD_URL: 'https://file.example:7443/' }, file), { ...file, server: 'https://file.example:7443/' });
});

test('no server, or one that is not http(s), is a usage error', () => {
  assert.throws(() => resolveSettings({}, {}, {}), UsageError);
  assert.throws(() => resolveSettings({ server: 'ftp://x' }, {}, {}), /Invalid server URL "ftp:\/\/x"/);
});

test('the config path is CROWD_CONFIG, else under the home directory', () => {
  assert.equal(configPath({ CROWD_CONFIG: '/x/c.yaml', HOME: '/home/a' }), '/x/c.yaml');
  assert.equal(configPath({ HOME: '/home/a' }), '/home/a/.config/crowd/config.yaml');
});

test('a malformed config file is an error naming the file, and a missing one is empty', async () => {
  assert.deepEqual(readConfigFile(join(dir, 'missing.yaml')), {});
  const bad = join(dir, 'bad.yaml');
  for (const text of ['server: [1, 2]\n', 'colour: blue\n', '- a\n', 'server: "unterminated\n']) {
    await writeFile(bad, text);
    assert.throws(() => readConfigFile(bad), (e: Error) => e instanceof UsageError && e.message.includes(bad));
  }
});

test('login checks the token, writes the config file with mode 0600, and later commands use it', async () => {
  const path = join(dir, 'sub', 'config.yaml');
  const env = { CROWD_CONFIG: path };
  const r = await runCaptured(['login', '--server', url, '--token', testToken], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`Logged in to ${url}; saved to ${path}`));
  assert.ok(!r.stdout.includes(testToken) && !r.stderr.includes(testToken));
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.deepEqual(YAML.parse(await readFile(path, 'utf8')), { server: url, token: testToken });
  const list = await runCaptured(['project', 'list'], { env });
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /^NAME\s+DESCRIPTION\s+REVISION\ndefault\s/);
  // The environment overrides the file, and a flag overrides the environment.
  const envWins = await runCaptured(['project', 'list'], { env: { ...env, CROWD_URL: 'http://127.0.0.1:1' } });
  assert.equal(envWins.code, 1);
  assert.match(envWins.stderr, /127\.0\.0\.1:1/);
  const flagWins = await runCaptured(['project', 'list', '--server', url, '--token', testToken], { env: { ...env, CROWD_URL: 'http://127.0.0.1:1' } });
  assert.equal(flagWins.code, 0, flagWins.stderr);
});

test('login with a wrong token fails and writes nothing', async () => {
  const path = join(dir, 'wrong', 'config.yaml');
  const r = await runCaptured(['login', '--server', url, '--token', 'crowd_wrong-secret'], { env: { CROWD_CONFIG: path } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^Error: /);
  assert.ok(!r.stderr.includes('crowd_wrong-secret'));
  await assert.rejects(stat(path), { code: 'ENOENT' });
  const missing = await runCaptured(['login', '--server', url], { env: { CROWD_CONFIG: path } });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /Missing --token/);
});

test('login also takes the server and token from the environment', async () => {
  const path = join(dir, 'from-env', 'config.yaml');
  const r = await runCaptured(['login'], { env: { CROWD_CONFIG: path, CROWD_URL: url, CROWD_TOKEN: testToken } });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(YAML.parse(await readFile(path, 'utf8')), { server: url, token: testToken });
});
