import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { AnyObject } from '../api/object.ts';
import { kindByPlural } from '../api/kinds.ts';
import type { Authenticator, AuthRequest, AuthResult } from '../auth/authenticator.ts';
import { formatBasic } from '../auth/basic-credentials.ts';
import { RateLimiter } from '../auth/rate-limiter.ts';
import { systemClock } from '../base/clock.ts';
import { buildTestApp, testToken, type TestApp } from './test-app.ts';

/** `Bearer as:<name>`: a user with no roles of its own; roles come from the projects' member bindings. */
const asUser: Authenticator = {
  name: 'test',
  async authenticate(req: AuthRequest): Promise<AuthResult> {
    const m = /^Bearer as:([a-z]+)$/.exec(req.authorization);
    return m ? { outcome: 'ok', identity: { name: m[1]!, authenticator: 'test' } } : { outcome: 'skip' };
  },
};

let t: TestApp;
let narrowToken: string;
const by = { author: 'seed' };

before(async () => {
  t = await buildTestApp({ tokens: true, authenticators: [asUser] });
  await t.store.create({ kind: 'project', name: 'p1', spec: { members: { alice: 'admin', bob: 'operator', 'group:readers': 'viewer', carol: 'viewer' } } }, by);
  await t.store.create({ kind: 'project', name: 'p2', spec: { members: { dave: 'admin' } } }, by);
  await t.store.create({ kind: 'project', name: 'p3', spec: {} }, by);
  await t.store.create({ kind: 'network', project: 'p1', name: 'lan', spec: { ipv4: { subnet: '10.1.0.0/24' } } }, by);
  await t.store.create({ kind: 'network', project: 'p2', name: 'lan', spec: { ipv4: { subnet: '10.2.0.0/24' } } }, by);
  const minted = await t.app.inject({ method: 'POST', url: '/v1/tokens', headers: t.auth, payload: { project: 'p1', scopes: ['vm:read'], ttl: '1h', role: 'viewer' } });
  assert.equal(minted.statusCode, 201, minted.body);
  narrowToken = minted.json<{ token: string }>().token;
});
after(async () => t.close());

type Caller = 'admin' | 'alice' | 'bob' | 'carol' | 'dave' | 'token' | 'none';
type Outcome = 'ok' | 'forbidden' | 'unauthenticated';
const callers: Caller[] = ['admin', 'alice', 'bob', 'carol', 'dave', 'token', 'none'];

function header(c: Caller): Record<string, string> {
  if (c === 'none') return {};
  if (c === 'admin') return { authorization: `Bearer ${testToken}` };
  if (c === 'token') return { authorization: `Bearer ${narrowToken}` };
  return { authorization: `Bearer as:${c}` };
}

/** What a project role may do to a resource in its project (p1 here): the decision table of the issue. */
function projectRole(c: Caller, resource: string, write: boolean): boolean {
  if (c === 'alice') return true;
  if (c === 'bob') return !write || resource === 'vm';
  if (c === 'carol') return !write;
  if (c === 'token') return resource === 'vm' && !write;
  return false; // dave: admin of p2 only
}

/**
 * The expected answer class for a route, or undefined for routes this table
 * does not cover (other subsystems' routes: only 401 without credentials and
 * no 401/403 for the cluster admin are checked).
 */
function expected(c: Caller, method: string, path: string, isPublic: boolean): Outcome | undefined {
  if (isPublic) return 'ok';
  if (c === 'none') return 'unauthenticated';
  if (c === 'admin') return 'ok';
  const write = method !== 'get';
  const deny = (allowed: boolean): Outcome => (allowed ? 'ok' : 'forbidden');
  const seg = path.split('/').slice(2); // after /v1
  if (path === '/metrics' || path === '/v1/audit') return 'forbidden';
  if (path === '/v1/watch') return deny(projectRole(c, 'vm', false)); // kinds=vm in p1
  if (seg[0] === 'tokens') return method === 'post' ? deny(c === 'alice') : 'ok';
  if (seg[0] === 'projects' && seg[2] === 'members') return deny(c === 'alice');
  const def = kindByPlural(seg[0] ?? '');
  if (!def) return undefined;
  const sub = seg[2];
  if (sub !== undefined && !['status', 'history', 'diff', 'rollback'].includes(sub)) return undefined;
  if (def.kind === 'node') return 'forbidden';
  if (def.kind === 'site' || def.kind === 'machine-type') return deny(!write && c !== 'token');
  if (def.kind === 'project') {
    if (write) return 'forbidden';
    if (seg.length === 1) return deny(c !== 'token');
    return deny(c !== 'dave' && c !== 'token');
  }
  return deny(projectRole(c, def.kind, write));
}

function classify(status: number): Outcome {
  return status === 401 ? 'unauthenticated' : status === 403 ? 'forbidden' : 'ok';
}

/** A request for a route template: project p1, ids that name nothing (p1 itself for project reads). */
function requestFor(c: Caller, method: string, path: string): { url: string; payload?: Record<string, unknown> } {
  const projectId = method === 'get' || path.includes('/members/') ? 'p1' : c === 'admin' ? 'p3' : 'p1';
  let url = path
    .replace(/^\/v1\/projects\/\{id\}/, `/v1/projects/${projectId}`)
    .replace('{member}', 'zed')
    .replace(/\{[a-z]+\}/g, 'nope');
  url += path === '/v1/watch' ? '?project=p1&kinds=vm&revision=999999999' : '?project=p1';
  if (method === 'get' || method === 'delete') return { url };
  if (path === '/v1/tokens') return { url, payload: { project: 'p1', scopes: ['vm:read'], ttl: '1h' } };
  if (path.includes('/members/')) return { url, payload: { role: 'viewer' } };
  return { url, payload: {} };
}

test('every route of the OpenAPI document answers each role as the authorization table says', async () => {
  const doc = (await t.app.inject({ url: '/v1/openapi.json' })).json<{ paths: Record<string, Record<string, { security?: unknown[] }>> }>();
  const mismatches: string[] = [];
  let checked = 0;
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const isPublic = Array.isArray(op.security) && op.security.length === 0;
      for (const c of callers) {
        const want = expected(c, method, path, isPublic);
        const { url, payload } = requestFor(c, method, path);
        const res = await t.app.inject({ method: method.toUpperCase() as 'GET', url, headers: header(c), ...(payload !== undefined ? { payload } : {}) });
        const got = classify(res.statusCode);
        if (res.statusCode >= 500) mismatches.push(`${c} ${method} ${url}: ${res.statusCode} ${res.body}`);
        if (want === undefined) {
          if (c === 'none' && !isPublic && got !== 'unauthenticated') mismatches.push(`${c} ${method} ${url}: want 401, got ${res.statusCode}`);
          if (c === 'admin' && got !== 'ok') mismatches.push(`${c} ${method} ${url}: want not 401/403, got ${res.statusCode}`);
          continue;
        }
        checked++;
        if (got !== want) mismatches.push(`${c} ${method} ${url}: want ${want}, got ${res.statusCode} ${res.body.slice(0, 200)}`);
      }
    }
  }
  assert.deepEqual(mismatches, []);
  assert.ok(checked > 300, `only ${checked} route × caller pairs were in the table`);
});

const get = (c: Caller, url: string) => t.app.inject({ url, headers: header(c) });

test('objects of one project are invisible from another: lists with project=*, gets by id, history and old revisions', async () => {
  const all = await get('dave', '/v1/networks?project=*');
  assert.equal(all.statusCode, 200);
  assert.deepEqual(all.json<{ items: AnyObject[] }>().items.map((n) => `${n.project}/${n.name}`), ['p2/lan']);
  const p1lan = await t.store.get({ kind: 'network', project: 'p1', idOrName: 'lan' });
  for (const url of [`/v1/networks/${p1lan.id}?project=p2`, `/v1/networks/${p1lan.id}/history?project=p2`, `/v1/networks/${p1lan.id}?project=p2&revision=${p1lan.revision}`]) {
    assert.equal((await get('dave', url)).statusCode, 404, url);
  }
  assert.equal((await get('dave', '/v1/networks?project=p1')).statusCode, 403);
  assert.equal((await get('dave', '/v1/networks/lan?project=p1')).statusCode, 403);
  const projects = await get('dave', '/v1/projects');
  assert.deepEqual(projects.json<{ items: AnyObject[] }>().items.map((p) => p.name), ['p2']);
  const admin = await get('admin', '/v1/networks?project=*');
  assert.deepEqual(admin.json<{ items: AnyObject[] }>().items.map((n) => n.project).sort(), ['p1', 'p2']);
});

test('watches across projects or of projects need the cluster-admin role', async () => {
  for (const url of ['/v1/watch?project=*&kinds=network', '/v1/watch?project=p2&kinds=project', '/v1/watch?project=p2', '/v1/watch?project=p1&kinds=network']) {
    assert.equal((await get('dave', url)).statusCode, 403, url);
  }
  // Allowed, then refused for the future revision before any stream starts.
  assert.equal((await get('dave', '/v1/watch?project=p2&kinds=network&revision=999999999')).statusCode, 400);
});

test('a binding to a group gives its members the role', async () => {
  const grouped: Authenticator = {
    name: 'grouped',
    authenticate: async (req) =>
      req.authorization === 'Bearer erin' ? { outcome: 'ok', identity: { name: 'erin', authenticator: 'grouped', groups: ['readers'] } } : { outcome: 'skip' },
  };
  const g = await buildTestApp({ authenticators: [grouped] });
  try {
    await g.store.create({ kind: 'project', name: 'p1', spec: { members: { 'group:readers': 'viewer' } } }, by);
    const auth = { authorization: 'Bearer erin' };
    assert.equal((await g.app.inject({ url: '/v1/networks?project=p1', headers: auth })).statusCode, 200);
    assert.equal((await g.app.inject({ method: 'POST', url: '/v1/networks?project=p1', headers: auth, payload: { name: 'x', spec: {} } })).statusCode, 403);
  } finally {
    await g.close();
  }
});

test('failed authentication is limited per source and per user with 429 and Retry-After; a missing header is not a failure', async () => {
  const limiter = new RateLimiter({ clock: systemClock, perSource: { burst: 3, perMinute: 1 }, perUser: { burst: 2, perMinute: 1 } });
  const r = await buildTestApp({ limiter });
  try {
    const call = (authorization: string | undefined, remoteAddress: string) =>
      r.app.inject({ url: '/v1/projects', remoteAddress, headers: authorization === undefined ? {} : { authorization } });
    for (let i = 0; i < 5; i++) assert.equal((await call(undefined, '192.0.2.1')).statusCode, 401);
    for (let i = 0; i < 3; i++) assert.equal((await call('Bearer wrong', '192.0.2.1')).statusCode, 401);
    const limited = await call('Bearer wrong', '192.0.2.1');
    assert.equal(limited.statusCode, 429);
    assert.match(String(limited.headers['retry-after']), /^[1-9]\d*$/);
    assert.equal((await call(`Bearer ${testToken}`, '192.0.2.1')).statusCode, 429, 'a limited source waits even with a good token');
    assert.equal((await call(`Bearer ${testToken}`, '192.0.2.2')).statusCode, 200);
    // Per user, across sources; an unknown user is limited exactly like a known one.
    for (const src of ['192.0.2.10', '192.0.2.11']) assert.equal((await call(formatBasic('ghost', 'x'), src)).statusCode, 401);
    const user = await call(formatBasic('ghost', 'x'), '192.0.2.12');
    assert.equal(user.statusCode, 429);
    assert.ok(Number(user.headers['retry-after']) >= 1);
    assert.equal((await call(formatBasic('other', 'x'), '192.0.2.12')).statusCode, 401);
  } finally {
    await r.close();
  }
});

test('role bindings are reread after a project changes, not after other writes', async () => {
  const g = await buildTestApp({ authenticators: [asUser] });
  try {
    await g.store.create({ kind: 'project', name: 'p1', spec: { members: { alice: 'viewer' } } }, by);
    await g.store.create({ kind: 'network', project: 'p1', name: 'lan', spec: { ipv4: { subnet: '10.1.0.0/24' } } }, by);
    let projectReads = 0;
    const list = g.store.list.bind(g.store);
    g.store.list = (q) => {
      if (q.kind === 'project') projectReads++;
      return list(q);
    };
    const auth = { authorization: 'Bearer as:alice' };
    const write = () => g.app.inject({ method: 'POST', url: '/v1/networks?project=p1', headers: auth, payload: { name: 'x', spec: { ipv4: { subnet: '10.9.0.0/24' } } } });
    assert.equal((await g.app.inject({ url: '/v1/networks?project=p1', headers: auth })).statusCode, 200);
    assert.equal((await write()).statusCode, 403);
    await g.store.update({ kind: 'network', project: 'p1', idOrName: 'lan' }, { labels: { touched: 'yes' }, metadata: {}, spec: { ipv4: { subnet: '10.1.0.0/24' } } }, by);
    assert.equal((await g.app.inject({ url: '/v1/networks/lan?project=p1', headers: auth })).statusCode, 200);
    assert.equal(projectReads, 1);
    await g.store.update({ kind: 'project', idOrName: 'p1' }, { labels: {}, metadata: {}, spec: { members: { alice: 'admin' } } }, by);
    assert.equal((await write()).statusCode, 201);
    assert.equal(projectReads, 2);
    await g.store.update({ kind: 'project', idOrName: 'p1' }, { labels: {}, metadata: {}, spec: { members: {} } }, by);
    assert.equal((await g.app.inject({ url: '/v1/networks?project=p1', headers: auth })).statusCode, 403);
  } finally {
    await g.close();
  }
});
