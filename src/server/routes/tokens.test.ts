import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Authenticator } from '../../auth/authenticator.ts';
import { buildTestApp, type TestApp } from '../test-app.ts';
import type { TokenInfo } from './tokens.ts';

/** `Bearer as:<name>`: a user whose roles come from project member bindings only. */
const asUser: Authenticator = {
  name: 'test',
  authenticate: async (req) => {
    const m = /^Bearer as:([a-z]+)$/.exec(req.authorization);
    return m ? { outcome: 'ok', identity: { name: m[1]!, authenticator: 'test' } } : { outcome: 'skip' };
  },
};

let t: TestApp;
before(async () => {
  t = await buildTestApp({ tokens: true, authenticators: [asUser] });
  const by = { author: 'seed' };
  await t.store.create({ kind: 'project', name: 'p1', spec: { members: { alice: 'admin', bob: 'operator' } } }, by);
  await t.store.create({ kind: 'project', name: 'p2', spec: {} }, by);
});
after(async () => t.close());

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function mint(auth: Record<string, string>, body: Record<string, unknown>): Promise<{ status: number; token: string; id: string; body: string }> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/tokens', headers: auth, payload: body });
  const json = res.statusCode === 201 ? res.json<{ token: string; id: string }>() : { token: '', id: '' };
  return { status: res.statusCode, token: json.token, id: json.id, body: res.body };
}

test('a minted token acts only within its project, role and scopes', async () => {
  const m = await mint(t.auth, { project: 'p1', role: 'operator', scopes: ['vm:*', 'network:read'], ttl: '1h' });
  assert.equal(m.status, 201, m.body);
  assert.match(m.token, /^cst_/);
  const call = (method: 'GET' | 'POST', url: string) => t.app.inject({ method, url, headers: bearer(m.token), ...(method === 'POST' ? { payload: { name: 'n', spec: {} } } : {}) });
  assert.equal((await call('GET', '/v1/networks?project=p1')).statusCode, 200);
  assert.equal((await call('POST', '/v1/networks?project=p1')).statusCode, 403);
  assert.equal((await call('GET', '/v1/networks?project=p2')).statusCode, 403);
  assert.equal((await call('GET', '/v1/images?project=p1')).statusCode, 403);
});

test('a token mints only tokens narrower than itself', async () => {
  const parent = await mint(t.auth, { project: 'p1', role: 'admin', scopes: ['vm:*', 'network:read', 'token:write'], ttl: '1h' });
  assert.equal(parent.status, 201, parent.body);
  const auth = bearer(parent.token);
  assert.equal((await mint(auth, { project: 'p1', scopes: ['network:read'], ttl: '30m' })).status, 201);
  for (const [body, path] of [
    [{ project: 'p1', scopes: ['image:read'], ttl: '30m' }, '/scopes'],
    [{ project: 'p1', scopes: ['vm:read'], ttl: '2h' }, '/ttl'],
    [{ project: 'p1', scopes: ['vm:read'], ttl: '30m', role: 'cluster-admin' }, '/role'],
  ] as const) {
    const r = await mint(auth, body);
    assert.equal(r.status, 403, JSON.stringify(body));
    assert.ok(JSON.parse(r.body).error.details.some((d: { path: string }) => d.path === path), r.body);
  }
  assert.equal((await mint(auth, { project: 'p2', scopes: ['vm:read'], ttl: '30m' })).status, 403);
});

test('users mint within their project role; operators and strangers cannot mint', async () => {
  assert.equal((await mint(bearer('as:alice'), { project: 'p1', scopes: ['*'], ttl: '1d' })).status, 201);
  assert.equal((await mint(bearer('as:alice'), { project: 'p1', scopes: ['*'], ttl: '1d', role: 'cluster-admin' })).status, 403);
  assert.equal((await mint(bearer('as:alice'), { project: 'p2', scopes: ['*'], ttl: '1d' })).status, 403);
  assert.equal((await mint(bearer('as:bob'), { project: 'p1', scopes: ['vm:read'], ttl: '1h' })).status, 403);
  assert.equal((await mint(t.auth, { project: 'p1', scopes: ['nope'], ttl: '1h' })).status, 400);
});

test('a token bound to a CIDR is refused from outside it', async () => {
  const m = await mint(t.auth, { project: 'p1', scopes: ['*'], ttl: '1h', cidr: '10.0.0.0/8' });
  assert.equal(m.status, 201, m.body);
  assert.equal((await t.app.inject({ url: '/v1/networks?project=p1', headers: bearer(m.token) })).statusCode, 401);
  assert.equal((await t.app.inject({ url: '/v1/networks?project=p1', headers: bearer(m.token), remoteAddress: '10.1.2.3' })).statusCode, 200);
});

test('tokens are listed without secrets and revoked through the API', async () => {
  const m = await mint(bearer('as:alice'), { project: 'p1', scopes: ['vm:read'], ttl: '1h', description: 'ci' });
  const list = await t.app.inject({ url: '/v1/tokens', headers: bearer('as:alice') });
  const items = list.json<{ items: TokenInfo[] }>().items;
  const mine = items.find((i) => i.id === m.id);
  assert.deepEqual({ ...mine, createdAt: undefined, expiresAt: undefined }, {
    id: m.id, subject: 'alice', project: 'p1', role: 'admin', scopes: ['vm:read'], description: 'ci', revoked: false, createdAt: undefined, expiresAt: undefined,
  });
  assert.ok(!list.body.includes(m.token) && !list.body.includes('hash'));
  const bobs = await t.app.inject({ url: '/v1/tokens', headers: bearer('as:bob') });
  assert.ok(!bobs.json<{ items: TokenInfo[] }>().items.some((i) => i.id === m.id), 'bob does not manage alice’s p1 tokens');
  assert.equal((await t.app.inject({ method: 'DELETE', url: `/v1/tokens/${m.id}`, headers: bearer('as:bob') })).statusCode, 404);
  assert.equal((await t.app.inject({ url: '/v1/vms?project=p1', headers: bearer(m.token) })).statusCode, 200);
  const revoked = await t.app.inject({ method: 'DELETE', url: `/v1/tokens/${m.id}`, headers: bearer('as:alice') });
  assert.equal(revoked.json<TokenInfo>().revoked, true);
  assert.equal((await t.app.inject({ url: '/v1/vms?project=p1', headers: bearer(m.token) })).statusCode, 401);
});

test('a well-signed token the store never issued is refused', async () => {
  const { token } = t.scoped.issue({ sub: 'x', project: 'p1', role: 'admin', scopes: ['*'], ttlMs: 60_000 });
  assert.equal((await t.app.inject({ url: '/v1/vms?project=p1', headers: bearer(token) })).statusCode, 401);
});

test('project admins bind and unbind members of their own project only', async () => {
  const put = (who: string, project: string, member: string) =>
    t.app.inject({ method: 'PUT', url: `/v1/projects/${project}/members/${member}`, headers: bearer(`as:${who}`), payload: { role: 'viewer' } });
  assert.equal((await t.app.inject({ url: '/v1/vms?project=p1', headers: bearer('as:frank') })).statusCode, 403);
  const bound = await put('alice', 'p1', 'frank');
  assert.equal(bound.statusCode, 200, bound.body);
  assert.equal(bound.json<{ spec: { members: Record<string, string> } }>().spec.members.frank, 'viewer');
  assert.equal((await t.app.inject({ url: '/v1/vms?project=p1', headers: bearer('as:frank') })).statusCode, 200);
  assert.equal((await put('bob', 'p1', 'gina')).statusCode, 403);
  assert.equal((await put('alice', 'p2', 'gina')).statusCode, 403);
  assert.equal((await put('alice', 'nosuch', 'gina')).statusCode, 403, 'an unknown project looks like a forbidden one');
  const unbound = await t.app.inject({ method: 'DELETE', url: '/v1/projects/p1/members/frank', headers: bearer('as:alice') });
  assert.equal(unbound.statusCode, 200);
  assert.equal((await t.app.inject({ url: '/v1/vms?project=p1', headers: bearer('as:frank') })).statusCode, 403);
  assert.equal((await t.app.inject({ method: 'DELETE', url: '/v1/projects/p1/members/frank', headers: bearer('as:alice') })).statusCode, 404);
});
