import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import YAML from 'yaml';
import { AdminOnlyAuthorizer } from '../auth/authorizer.ts';
import { AuthChain } from '../auth/chain.ts';
import { hashToken, StaticTokenAuthenticator } from '../auth/static-token.ts';
import { silentLogger } from '../base/logger.ts';
import { missingTools } from '../base/require-tool.ts';
import { ExecRunner } from '../base/runner.ts';
import { buildApp } from '../server/app.ts';
import { ensureDefaultProject } from '../server/bootstrap.ts';
import { certFingerprint } from '../server/tls.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import { runCaptured, type RunOptions } from './captured-io.ts';
import { writeConfigFile } from './config.ts';

const skip = missingTools('openssl');
const token = 'crowd_tls-test-token';
let dir: string;
let app: FastifyInstance;
let store: SqliteStore;
let url: string;
let fingerprint: string;
let otherFingerprint: string;

/** A self-signed certificate for 127.0.0.1, made by openssl as the server makes its own. */
async function selfSigned(name: string): Promise<{ cert: string; key: string }> {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  await new ExecRunner().run({
    argv: ['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=crowd-test', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyPath, '-out', certPath],
  });
  return { cert: await readFile(certPath, 'utf8'), key: await readFile(keyPath, 'utf8') };
}

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'crowd-tls-test-'));
  const tls = await selfSigned('server');
  fingerprint = certFingerprint(tls.cert);
  otherFingerprint = certFingerprint((await selfSigned('other')).cert);
  store = new SqliteStore({ path: ':memory:' });
  await ensureDefaultProject(store);
  app = await buildApp({
    store,
    auth: new AuthChain([new StaticTokenAuthenticator([{ name: 'admin', sha256: hashToken(token) }])]),
    authorizer: new AdminOnlyAuthorizer(),
    logger: silentLogger(),
    https: tls,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
after(async () => {
  if (skip) return;
  await app.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
function configIn(): string {
  return join(dir, `config-${++n}`, 'config.yaml');
}
const login = (path: string, extra: string[], opts: RunOptions = {}) =>
  runCaptured(['login', '--server', url, '--token', token, ...extra], { env: { CROWD_CONFIG: path }, ...opts });

test('login --yes shows the certificate fingerprint, pins it, and later requests verify it', { skip }, async () => {
  const path = configIn();
  const r = await login(path, ['--yes']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`fingerprint is ${fingerprint}`));
  assert.deepEqual(YAML.parse(await readFile(path, 'utf8')), { server: url, token, fingerprint });
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  const list = await runCaptured(['project', 'list', '-o', 'json'], { env: { CROWD_CONFIG: path } });
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout).map((p: { name: string }) => p.name), ['default']);
});

test('login pins a matching --fingerprint in any common spelling, and refuses a different one', { skip }, async () => {
  const colons = fingerprint.slice('sha256:'.length).toUpperCase().match(/../g)!.join(':');
  const ok = await login(configIn(), ['--fingerprint', `SHA256:${colons}`]);
  assert.equal(ok.code, 0, ok.stderr);
  const path = configIn();
  const wrong = await login(path, ['--fingerprint', otherFingerprint]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, new RegExp(`Refusing server .*${fingerprint} does not match --fingerprint ${otherFingerprint}`));
  await assert.rejects(stat(path), { code: 'ENOENT' });
});

test('at a terminal login asks, and only "y" pins', { skip }, async () => {
  const yes = configIn();
  const r = await login(yes, [], { tty: true, stdin: 'y\n' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /Trust it\? \[y\/N\]/);
  assert.equal(YAML.parse(await readFile(yes, 'utf8')).fingerprint, fingerprint);
  const no = configIn();
  const refused = await login(no, [], { tty: true, stdin: '\n' });
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /not trusted: nothing written/);
  await assert.rejects(stat(no), { code: 'ENOENT' });
});

test('without a terminal, --yes or --fingerprint, login refuses to pin', { skip }, async () => {
  const path = configIn();
  const r = await login(path, []);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /pass --fingerprint or --yes/);
  await assert.rejects(stat(path), { code: 'ENOENT' });
});

test('a server whose certificate differs from the pinned one is refused with a clear error', { skip }, async () => {
  const path = configIn();
  writeConfigFile(path, { server: url, token, fingerprint: otherFingerprint });
  const r = await runCaptured(['vm', 'list'], { env: { CROWD_CONFIG: path } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`Refusing server "127\\.0\\.0\\.1:\\d+": its certificate fingerprint ${fingerprint} does not match the pinned ${otherFingerprint}`));
  assert.ok(!r.stderr.includes(token));
});

test('an unpinned self-signed server is refused with a hint to log in', { skip }, async () => {
  const r = await runCaptured(['vm', 'list'], { env: { CROWD_URL: url, CROWD_TOKEN: token, CROWD_CONFIG: join(dir, 'none.yaml') } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Cannot reach server/);
  assert.match(r.stderr, /crowd login/);
});
