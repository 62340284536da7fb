import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ApiError } from '../api/errors.ts';
import { FakeClock } from '../base/clock.ts';
import type { AuthRequest } from './authenticator.ts';
import { bufferLogger } from './log-buffer.ts';
import { checkNarrower, mintingLimits, ScopedTokenAuthenticator, type TokenClaims } from './scoped-token.ts';

const hour = 3_600_000;

function setup(revoked = new Set<string>()) {
  const clock = new FakeClock();
  const key = randomBytes(32);
  const log = bufferLogger();
  const auth = new ScopedTokenAuthenticator({ keys: [key], clock, isRevoked: (id) => revoked.has(id), logger: log.logger });
  return { clock, key, log, auth, revoked };
}

function req(token: string, source = '127.0.0.1'): AuthRequest {
  return { authorization: `Bearer ${token}`, method: 'GET', path: '/v1/vms', source };
}

const base = { sub: 'alice', project: 'p1', role: 'operator' as const, scopes: ['vm:write'], ttlMs: hour };

test('an issued token authenticates as itself with its project role and scopes', async () => {
  const { auth, log } = setup();
  const { token, claims } = auth.issue(base);
  assert.match(token, /^cst_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
  assert.match(claims.id, /^tok_/);
  assert.deepEqual(await auth.authenticate(req(token)), {
    outcome: 'ok',
    identity: { name: `token:${claims.id}`, authenticator: 'scoped-token', scopes: ['vm:write'], roles: { p1: 'operator' } },
  });
  const admin = auth.issue({ ...base, project: '*', role: 'cluster-admin', scopes: ['*:read'] });
  const r = await auth.authenticate(req(admin.token));
  assert.equal(r.outcome === 'ok' && r.identity.clusterAdmin, true);
  assert.ok(!log.text().includes(token.slice(4, 30)));
});

test('other bearer tokens and other schemes are not claimed', async () => {
  const { auth } = setup();
  assert.deepEqual(await auth.authenticate(req('sometoken')), { outcome: 'skip' });
  assert.deepEqual(await auth.authenticate({ ...req(''), authorization: 'Basic YTpi' }), { outcome: 'skip' });
});

test('a tampered, foreign or malformed token is denied', async () => {
  const { auth } = setup();
  const { token } = auth.issue(base);
  const [payload, sig] = token.slice(4).split('.') as [string, string];
  const body = JSON.parse(Buffer.from(payload, 'base64url').toString());
  const forged = Buffer.from(JSON.stringify({ ...body, role: 'admin' })).toString('base64url');
  const other = setup().auth.issue(base).token;
  for (const bad of [`cst_${forged}.${sig}`, other, `cst_${payload}.${'A'.repeat(43)}`, 'cst_x.y', `cst_${Buffer.from('{}').toString('base64url')}.${sig}`]) {
    const r = await auth.authenticate(req(bad));
    assert.equal(r.outcome, 'deny', bad);
  }
});

test('a token signed with a retired key still verifies while that key is listed', async () => {
  const old = setup();
  const { token } = old.auth.issue(base);
  const rotated = new ScopedTokenAuthenticator({ keys: [randomBytes(32), old.key], clock: old.clock, isRevoked: () => false, logger: old.log.logger });
  assert.equal((await rotated.authenticate(req(token))).outcome, 'ok');
});

test('an expired token is denied', async () => {
  const { auth, clock } = setup();
  const { token } = auth.issue(base);
  clock.advance(hour - 1);
  assert.equal((await auth.authenticate(req(token))).outcome, 'ok');
  clock.advance(1);
  assert.deepEqual(await auth.authenticate(req(token)), { outcome: 'deny', reason: 'token expired' });
});

test('a revoked token is denied, and so is one whose revocation cannot be checked', async () => {
  const { auth, revoked } = setup();
  const { token, claims } = auth.issue(base);
  revoked.add(claims.id);
  assert.deepEqual(await auth.authenticate(req(token)), { outcome: 'deny', reason: 'token revoked' });
  const log = bufferLogger();
  const failing = new ScopedTokenAuthenticator({
    keys: [randomBytes(32)],
    clock: new FakeClock(),
    isRevoked: () => Promise.reject(new Error('store down')),
    logger: log.logger,
  });
  const t2 = failing.issue(base);
  assert.deepEqual(await failing.authenticate(req(t2.token)), { outcome: 'deny', reason: 'revocation check failed' });
  assert.match(log.text(), new RegExp(t2.claims.id));
  assert.ok(!log.text().includes(t2.token.slice(4, 40)), 'the token itself is not logged');
});

test('a token with a CIDR works only from inside it', async () => {
  const { auth } = setup();
  const v4 = auth.issue({ ...base, cidr: '192.0.2.0/24' }).token;
  assert.equal((await auth.authenticate(req(v4, '192.0.2.77'))).outcome, 'ok');
  assert.equal((await auth.authenticate(req(v4, '::ffff:192.0.2.77'))).outcome, 'ok');
  assert.deepEqual(await auth.authenticate(req(v4, '192.0.3.1')), { outcome: 'deny', reason: `source outside the token's CIDR` });
  const v6 = auth.issue({ ...base, cidr: 'fd00:1::/64' }).token;
  assert.equal((await auth.authenticate(req(v6, 'fd00:1::5'))).outcome, 'ok');
  assert.equal((await auth.authenticate(req(v6, '192.0.2.77'))).outcome, 'deny');
  const one = auth.issue({ ...base, cidr: '198.51.100.9' }).token;
  assert.equal((await auth.authenticate(req(one, '198.51.100.9'))).outcome, 'ok');
  assert.equal((await auth.authenticate(req(one, '198.51.100.10'))).outcome, 'deny');
});

test('bad token requests are refused with every problem named', () => {
  const { auth } = setup();
  const err = (() => {
    try {
      auth.issue({ sub: 'a', project: 'Bad_Name', role: 'cluster-admin', scopes: ['vm:delete'], ttlMs: 0, cidr: '10.0.0.1/8' });
    } catch (e) {
      return e;
    }
  })();
  assert.ok(err instanceof ApiError);
  assert.equal(err.code, 'invalid');
  assert.deepEqual(err.details?.map((d) => d.path), ['/scopes/0', '/project', '/project', '/cidr', '/ttl']);
  assert.match(err.message, /^Cannot create token: \/scopes\/0: "vm:delete" is not a scope/);
  assert.throws(() => new ScopedTokenAuthenticator({ keys: [Buffer.alloc(16)], clock: new FakeClock(), isRevoked: () => false, logger: bufferLogger().logger }), /at least 32 bytes/);
});

const parent: Omit<TokenClaims, 'id'> = { sub: 'a', project: 'p1', role: 'operator', scopes: ['vm:write', 'image:read'], exp: 1000, cidr: '10.0.0.0/8' };

test('a child token equal to or narrower than its parent is allowed', () => {
  assert.deepEqual(checkNarrower(parent, parent), []);
  assert.deepEqual(checkNarrower(parent, { ...parent, role: 'viewer', scopes: ['vm:read'], exp: 10, cidr: '10.1.0.0/16' }), []);
});

test('a child token wider than its parent in any way is refused, naming each way', () => {
  const problems = checkNarrower(parent, { sub: 'a', project: 'p2', role: 'admin', scopes: ['vm:write', 'network:read'], exp: 1001, cidr: '0.0.0.0/0' });
  assert.deepEqual(problems.map((p) => p.path), ['/scopes', '/project', '/role', '/ttl', '/cidr']);
  assert.equal(problems[0]!.message, `beyond the parent's scopes: network:read`);
  const { cidr: _c, ...noCidr } = parent;
  assert.deepEqual(checkNarrower(parent, noCidr).map((p) => p.path), ['/cidr']);
  assert.deepEqual(checkNarrower(parent, { ...parent, scopes: ['*'] }).map((p) => p.path), ['/scopes']);
});

test('minting limits follow the minter: a token its claims, a user their role', () => {
  const tokenClaims = { ...parent, id: 'tok_1' };
  assert.equal(mintingLimits({ name: 'x', authenticator: 'scoped-token' }, 'p1', tokenClaims), tokenClaims);
  assert.deepEqual(mintingLimits({ name: 'root', authenticator: 'static-token', clusterAdmin: true }, 'p1'), {
    sub: 'root',
    project: '*',
    role: 'cluster-admin',
    scopes: ['*'],
    exp: Infinity,
  });
  const bob = { name: 'bob', authenticator: 'htpasswd', roles: { p1: 'viewer' as const, '*': 'viewer' as const } };
  assert.deepEqual(mintingLimits(bob, 'p1'), { sub: 'bob', project: 'p1', role: 'viewer', scopes: ['*'], exp: Infinity });
  assert.equal(mintingLimits({ name: 'eve', authenticator: 'htpasswd', roles: { p2: 'admin' } }, 'p1'), undefined);
  const limits = mintingLimits(bob, 'p1')!;
  assert.deepEqual(checkNarrower(limits, { ...limits, role: 'operator', exp: 5 }).map((p) => p.path), ['/role']);
});
