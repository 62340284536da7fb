import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api/errors.ts';
import type { Identity } from './authenticator.ts';
import type { Action } from './authorizer.ts';
import { decide, RoleAuthorizer, visibleProjects } from './role-authorizer.ts';

const who: Record<string, Identity> = {
  root: { name: 'root', authenticator: 't', clusterAdmin: true },
  admin: { name: 'a', authenticator: 't', roles: { p1: 'admin' } },
  operator: { name: 'o', authenticator: 't', roles: { p1: 'operator' } },
  viewer: { name: 'v', authenticator: 't', roles: { p1: 'viewer', p2: 'operator' } },
  everywhere: { name: 'e', authenticator: 't', roles: { '*': 'viewer' } },
  nobody: { name: 'n', authenticator: 't' },
  vmToken: { name: 'token:t1', authenticator: 't', roles: { p1: 'admin' }, scopes: ['vm:write'] },
  rootReadToken: { name: 'token:t2', authenticator: 't', clusterAdmin: true, scopes: ['*:read'] },
  host: { name: 'node:h1', authenticator: 't', clusterAdmin: true, node: 'h1' },
};

// [identity, verb, resource, project | '-', allowed]
const table: [string, Action['verb'], string, string, boolean][] = [
  ['root', 'write', 'node', '-', true],
  ['root', 'write', 'network', 'p9', true],
  ['root', 'read', 'vm', '-', true],
  ['admin', 'write', 'network', 'p1', true],
  ['admin', 'write', 'firewall', 'p1', true],
  ['admin', 'write', 'token', 'p1', true],
  ['admin', 'write', 'role', 'p1', true],
  ['admin', 'write', 'vm', 'p2', false],
  ['admin', 'read', 'vm', 'p2', false],
  ['admin', 'read', 'vm', '-', false],
  ['admin', 'write', 'project', 'p1', false],
  ['admin', 'write', 'machine-type', '-', false],
  ['admin', 'read', 'machine-type', '-', true],
  ['admin', 'read', 'site', '-', true],
  ['admin', 'read', 'node', '-', false],
  ['admin', 'read', 'audit', '-', false],
  ['admin', 'read', 'user', '-', false],
  ['admin', 'read', 'project', 'p1', true],
  ['admin', 'read', 'project', 'p2', false],
  ['admin', 'read', 'project', '-', true],
  ['operator', 'write', 'vm', 'p1', true],
  ['operator', 'read', 'network', 'p1', true],
  ['operator', 'read', 'token', 'p1', true],
  ['operator', 'write', 'network', 'p1', false],
  ['operator', 'write', 'firewall', 'p1', false],
  ['operator', 'write', 'image', 'p1', false],
  ['operator', 'write', 'token', 'p1', false],
  ['operator', 'write', 'role', 'p1', false],
  ['viewer', 'read', 'vm', 'p1', true],
  ['viewer', 'read', 'firewall', 'p1', true],
  ['viewer', 'write', 'vm', 'p1', false],
  ['viewer', 'write', 'vm', 'p2', true],
  ['viewer', 'read', 'vm', 'p3', false],
  ['everywhere', 'read', 'vm', 'p7', true],
  ['everywhere', 'write', 'vm', 'p7', false],
  ['nobody', 'read', 'vm', 'p1', false],
  ['nobody', 'read', 'machine-type', '-', false],
  ['nobody', 'read', 'project', '-', false],
  ['vmToken', 'write', 'vm', 'p1', true],
  ['vmToken', 'read', 'vm', 'p1', true],
  ['vmToken', 'read', 'network', 'p1', false],
  ['vmToken', 'write', 'network', 'p1', false],
  ['rootReadToken', 'read', 'node', '-', true],
  ['rootReadToken', 'read', 'vm', '-', true],
  ['rootReadToken', 'write', 'vm', 'p1', false],
  ['host', 'read', 'vm', 'p1', true],
  ['host', 'write', 'network', '-', true],
  ['root', 'write', 'no-such-resource', '-', true],
  ['admin', 'write', 'no-such-resource', 'p1', false],
];

test('every row of the decision table gets its answer', () => {
  for (const [id, verb, resource, project, allowed] of table) {
    const action: Action = project === '-' ? { verb, resource } : { verb, resource, project };
    assert.equal(decide(who[id]!, action).allow, allowed, `${id} ${verb} ${resource} in ${project}`);
  }
});

test('a refusal is a forbidden ApiError naming the action and the reason', () => {
  const err = (() => {
    try {
      new RoleAuthorizer().authorize(who.operator!, { verb: 'write', resource: 'network', project: 'p1' });
    } catch (e) {
      return e;
    }
  })();
  assert.ok(err instanceof ApiError);
  assert.equal(err.code, 'forbidden');
  assert.equal(err.message, 'Cannot write network in project "p1": permission denied');
  assert.deepEqual(err.details, [{ path: 'authorization', message: 'role "operator" cannot change network objects' }]);
  assert.doesNotThrow(() => new RoleAuthorizer().authorize(who.operator!, { verb: 'write', resource: 'vm', project: 'p1' }));
});

test('visible projects are all for cluster admins and all-project roles, else the projects with a role', () => {
  assert.equal(visibleProjects(who.root!), '*');
  assert.equal(visibleProjects(who.everywhere!), '*');
  assert.deepEqual(visibleProjects(who.viewer!), ['p1', 'p2']);
  assert.deepEqual(visibleProjects(who.nobody!), []);
  assert.deepEqual(visibleProjects(who.host!), []);
});
