import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from '../api/errors.ts';
import { FakeClock } from '../base/clock.ts';
import { AuthChain } from './chain.ts';
import { formatBasic } from './basic-credentials.ts';
import { bufferLogger } from './log-buffer.ts';
import { buildAuthenticators, checkAuthConfig, type AuthDeps } from './registry.ts';
import { ScopedTokenAuthenticator } from './scoped-token.ts';
import { hashToken } from './static-token.ts';
import { MemoryTotpState } from './totp.ts';

function files(t: { after: (fn: () => void) => void }) {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-registry-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Password "p", written by `htpasswd -nbs sam p`.
  writeFileSync(join(dir, 'users'), 'sam:{SHA}UWuXg/ylF+7L0dBk2i0WUxCxl1k=\n');
  writeFileSync(join(dir, 'key'), randomBytes(32));
  writeFileSync(join(dir, 'bindpw'), 'svcpw\n');
  return dir;
}

const deps = (): AuthDeps => ({ logger: bufferLogger().logger, clock: new FakeClock(), totpState: new MemoryTotpState(), isRevoked: () => false });

function invalid(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  assert.fail('expected an ApiError');
}

async function invalidAsync(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  assert.fail('expected an ApiError');
}

test('a chain of every type is built in config order and works', async (t) => {
  const dir = files(t);
  const config = [
    { type: 'htpasswd', file: join(dir, 'users'), users: { sam: [{ project: 'p1', role: 'viewer' }] }, totp: 'optional' },
    { type: 'ldap', url: 'ldap://127.0.0.1:1', bindDn: 'cn=svc', bindPasswordFile: join(dir, 'bindpw'), userBase: 'ou=people', groups: { 'cn=ops': [{ role: 'cluster-admin' }] } },
    { type: 'static-token', tokens: [{ name: 'root', sha256: hashToken('god') }] },
    { type: 'scoped-token', keyFiles: [join(dir, 'key')], maxTtlHours: 24 },
    { type: 'webhook', url: 'http://127.0.0.1:1/hook', timeoutMs: 500 },
  ];
  const chain = await buildAuthenticators(config, deps());
  assert.deepEqual(chain.map((a) => a.name), ['htpasswd+totp', 'ldap', 'static-token', 'scoped-token', 'webhook']);
  const auth = new AuthChain(chain);
  const req = { method: 'GET', path: '/v1/vms', source: '127.0.0.1' };
  assert.equal((await auth.authenticate({ ...req, authorization: 'Bearer god' })).name, 'root');
  const sam = await auth.authenticate({ ...req, authorization: formatBasic('sam', 'p') });
  assert.deepEqual(sam, { name: 'sam', authenticator: 'htpasswd', roles: { p1: 'viewer' } });
  const scoped = chain[3] as ScopedTokenAuthenticator;
  assert.throws(() => scoped.issue({ sub: 'sam', project: 'p1', role: 'viewer', scopes: ['vm:read'], ttlMs: 25 * 3_600_000 }), /\/ttl/);
  const { token } = scoped.issue({ sub: 'sam', project: 'p1', role: 'viewer', scopes: ['vm:read'], ttlMs: 3_600_000 });
  assert.equal((await auth.authenticate({ ...req, authorization: `Bearer ${token}` })).authenticator, 'scoped-token');
});

test('config errors name the entry and the field', () => {
  const cases: [unknown, string][] = [
    [{}, 'Invalid auth config: authenticators: expected a non-empty list'],
    [[], 'Invalid auth config: authenticators: expected a non-empty list'],
    [[{ type: 'kerberos' }], 'Invalid auth config: authenticators[0].type: expected one of htpasswd, ldap, static-token, scoped-token, webhook'],
    [[null], 'Invalid auth config: authenticators[0].type: expected one of htpasswd, ldap, static-token, scoped-token, webhook'],
    [[{ type: 'static-token', tokens: [{ name: 'a', sha256: 'a'.repeat(64) }] }, { type: 'htpasswd' }], 'Invalid auth config: authenticators[1].file: expected required property'],
    [[{ type: 'htpasswd', file: 'x', users: { sam: [{ project: 'p', role: 'god' }] } }], 'Invalid auth config: authenticators[0].users.sam[0]: expected union value'],
    [[{ type: 'ldap', url: 'http://x', bindDn: 'a', userBase: 'b' }], `Invalid auth config: authenticators[0].url: expected string to match '^ldaps?://[^/]+/?$'`],
    [[{ type: 'ldap', url: 'ldap://x', bindDn: 'a', userBase: 'b', groupSearch: { base: 'g', scope: 'one' } }], 'Invalid auth config: authenticators[0].groupSearch.scope: unexpected property'],
    [[{ type: 'static-token', tokens: [{ name: 'root', sha256: 'plaintext-token' }] }], `Invalid auth config: authenticators[0].tokens[0].sha256: expected string to match '^[0-9a-f]{64}$'`],
    [[{ type: 'webhook', url: 'http://h', timeoutMs: 0 }], 'Invalid auth config: authenticators[0].timeoutMs: expected integer to be greater or equal to 1'],
  ];
  for (const [config, message] of cases) {
    const err = invalid(() => checkAuthConfig(config));
    assert.equal(err.code, 'invalid');
    assert.equal(err.message, message);
  }
});

test('every problem is listed in the details, not only the first', () => {
  const err = invalid(() => checkAuthConfig([{ type: 'ldap', url: 'ldap://x' }, { type: 'webhook' }]));
  assert.deepEqual(err.details?.map((d) => d.path), ['authenticators[0].bindDn', 'authenticators[0].userBase', 'authenticators[1].url']);
});

test('a factory that cannot start names its entry', async (t) => {
  const dir = files(t);
  const cases: [unknown[], AuthDeps, RegExp][] = [
    [[{ type: 'htpasswd', file: join(dir, 'missing') }], deps(), /^Invalid auth config: authenticators\[0\] \(htpasswd\): Cannot read htpasswd file ".*missing": ENOENT/],
    [[{ type: 'ldap', url: 'ldap://h', bindDn: 'a', userBase: 'b' }], deps(), /authenticators\[0\] \(ldap\): bindPassword: give exactly one of bindPassword and bindPasswordFile/],
    [[{ type: 'scoped-token', keyFiles: [join(dir, 'bindpw')] }], deps(), /authenticators\[0\] \(scoped-token\): Cannot use scoped-token keys: each needs at least 32 bytes/],
    [[{ type: 'scoped-token', keyFiles: [join(dir, 'key')] }], { ...deps(), isRevoked: undefined }, /no revocation lookup/],
    [[{ type: 'htpasswd', file: join(dir, 'users'), totp: 'required' }], { ...deps(), totpState: undefined }, /no TOTP state/],
  ];
  for (const [config, d, message] of cases) assert.match((await invalidAsync(buildAuthenticators(config, d))).message, message);
});

test('no password, token or header reaches the log or an error message, whatever fails', async (t) => {
  const dir = files(t);
  writeFileSync(join(dir, 'users'), 'sam:{SHA}UWuXg/ylF+7L0dBk2i0WUxCxl1k=\nbroken line\n');
  const log = bufferLogger();
  const clock = new FakeClock();
  const chain = await buildAuthenticators(
    [
      { type: 'htpasswd', file: join(dir, 'users') },
      { type: 'static-token', tokens: [{ name: 'root', sha256: hashToken('god-token-secret') }] },
      { type: 'scoped-token', keyFiles: [join(dir, 'key')] },
      { type: 'ldap', url: 'ldap://127.0.0.1:1', bindDn: 'cn=svc', bindPassword: 'svc-secret-pw', userBase: 'ou=people', timeoutMs: 1000 },
      { type: 'webhook', url: 'http://127.0.0.1:1/hook', timeoutMs: 500 },
    ],
    { logger: log.logger, clock, isRevoked: () => Promise.reject(new Error('store down')) },
  );
  const scoped = chain[2] as ScopedTokenAuthenticator;
  const { token } = scoped.issue({ sub: 'sam', project: 'p1', role: 'viewer', scopes: ['vm:read'], ttlMs: 3_600_000 });
  const secrets = ['god-token-secret', 'svc-secret-pw', 'wrong-pw-secret', 'ldap-user-pw', 'webhook-bearer-secret', token.slice(4, 60)];
  rmSync(join(dir, 'users'));
  const auth = new AuthChain(chain);
  const messages: string[] = [];
  for (const authorization of [
    formatBasic('sam', 'wrong-pw-secret'),
    formatBasic('ldapuser', 'ldap-user-pw'),
    'Bearer god-token-secret',
    `Bearer ${token}`,
    'Bearer webhook-bearer-secret',
  ]) {
    try {
      await auth.authenticate({ authorization, method: 'GET', path: '/v1/vms', source: '127.0.0.1' });
    } catch (e) {
      messages.push((e as Error).message, String((e as Error).cause ?? ''));
    }
  }
  const text = log.text();
  assert.match(text, /Cannot reload htpasswd file/);
  assert.match(text, /Cannot check whether a token is revoked/);
  assert.match(text, /Cannot reach the LDAP directory/);
  assert.match(text, /Cannot ask the auth webhook/);
  for (const s of secrets) {
    assert.ok(!text.includes(s), `"${s}" is not logged`);
    assert.ok(!messages.join('\n').includes(s), `"${s}" is in no error message`);
  }
});
