import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { TOTP } from 'otpauth';
import { parse } from 'yaml';
import { HtpasswdAuthenticator } from '../auth/htpasswd.ts';
import { enrolTotp, MemoryTotpState, TotpAuthenticator } from '../auth/totp.ts';
import { silentLogger } from '../base/logger.ts';
import { systemClock } from '../base/clock.ts';
import { buildTestApp, testToken, type TestApp } from '../server/test-app.ts';
import { runCaptured, type RunOptions } from './captured-io.ts';

let t: TestApp;
let dir: string;
let env: Record<string, string>;
let totpSecret: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crowd-cli-auth-'));
  const file = join(dir, 'htpasswd');
  writeFileSync(file, `alice:${bcrypt.hashSync('alice pw', 4)}\ntina:${bcrypt.hashSync('tina pw', 4)}\n`);
  const htpasswd = await new HtpasswdAuthenticator({ file, logger: silentLogger() }).ready();
  const state = new MemoryTotpState();
  const enrolled = enrolTotp('tina');
  totpSecret = enrolled.secret;
  await state.put('tina', enrolled.record);
  t = await buildTestApp({ tokens: true, authenticators: [new TotpAuthenticator({ inner: htpasswd, state, clock: systemClock })] });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  env = { CROWD_URL: `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`, CROWD_TOKEN: testToken, CROWD_CONFIG: join(dir, 'config.yaml') };
});
after(async () => {
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

const crowd = (argv: string[], opts: RunOptions = {}) => runCaptured(argv, { env, ...opts });
async function ok(argv: string[], opts: RunOptions = {}): Promise<string> {
  const r = await crowd(argv, opts);
  assert.equal(r.code, 0, `crowd ${argv.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

test('project create --member, role bind/unbind and project members manage role bindings', async () => {
  await ok(['project', 'create', 'p1', '--member', 'alice=admin', '--member', 'group:ops=viewer']);
  await ok(['role', 'bind', 'p1', 'tina', 'operator']);
  assert.deepEqual(JSON.parse(await ok(['project', 'members', 'p1', '-o', 'json'])), { alice: 'admin', 'group:ops': 'viewer', tina: 'operator' });
  await ok(['role', 'unbind', 'p1', 'group:ops']);
  assert.match(await ok(['role', 'list', 'p1']), /^MEMBER\s+ROLE\nalice\s+admin\ntina\s+operator\n$/);
  const bad = await crowd(['role', 'bind', 'p1', 'x', 'owner']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Invalid role "owner"/);
});

test('token create prints the secret once; list shows no secret; revoke locks the token out', async () => {
  await ok(['project', 'create', 'p2']);
  const created = JSON.parse(await ok(['token', 'create', '--project', 'p2', '--scope', 'vm:read,network:read', '--ttl', '1h', '--role', 'viewer', '-o', 'json']));
  assert.match(created.token, /^cst_/);
  assert.deepEqual(created.scopes, ['vm:read', 'network:read']);
  const list = await ok(['token', 'list']);
  assert.ok(list.includes(created.id) && !list.includes(created.token));
  await ok(['vm', 'list', '--project', 'p2'], { env: { ...env, CROWD_TOKEN: created.token } });
  assert.equal((await crowd(['network', 'create', 'n', '--subnet', '10.0.0.0/24', '--project', 'p2'], { env: { ...env, CROWD_TOKEN: created.token } })).code, 1);
  assert.match(await ok(['token', 'revoke', created.id]), /revoked/);
  const after = await crowd(['vm', 'list', '--project', 'p2'], { env: { ...env, CROWD_TOKEN: created.token } });
  assert.equal(after.code, 1);
  assert.match(after.stderr, /Authentication required/);
  assert.equal((await crowd(['token', 'create', '--project', 'p2', '--scope', 'vm:read', '--ttl', 'soon'])).code, 2);
});

test('login with a password from stdin saves a minted token, never the password', async () => {
  await ok(['project', 'create', 'p3', '--member', 'alice=admin']);
  const noToken = { ...env, CROWD_TOKEN: '' };
  await ok(['login', '--user', 'alice', '--project', 'p3'], { env: noToken, stdin: 'alice pw\n' });
  const config = readFileSync(env.CROWD_CONFIG!, 'utf8');
  assert.ok(!config.includes('alice pw'));
  const saved = parse(config) as { token: string };
  assert.match(saved.token, /^cst_/);
  await ok(['vm', 'list', '--project', 'p3'], { env: { CROWD_CONFIG: env.CROWD_CONFIG! } });
  const wrong = await crowd(['login', '--user', 'alice', '--project', 'p3'], { env: noToken, stdin: 'nope\n' });
  assert.equal(wrong.code, 1);
});

test('login --totp reads the code after the password; a replayed code is refused', async () => {
  await ok(['role', 'bind', 'p3', 'tina', 'admin']);
  const code = new TOTP({ secret: totpSecret }).generate();
  const noToken = { ...env, CROWD_TOKEN: '' };
  const plain = await crowd(['login', '--user', 'tina', '--project', 'p3'], { env: noToken, stdin: 'tina pw\n' });
  assert.equal(plain.code, 1, 'an enrolled user needs the second factor');
  await ok(['login', '--user', 'tina', '--project', 'p3', '--totp'], { env: noToken, stdin: `tina pw\n${code}\n` });
  const replay = await crowd(['login', '--user', 'tina', '--project', 'p3', '--code', code], { env: noToken, stdin: 'tina pw\n' });
  assert.equal(replay.code, 1);
});
