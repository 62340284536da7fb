import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withMemberships, type ProjectMembers } from './project-members.ts';

const projects: ProjectMembers[] = [
  { name: 'p1', members: { alice: 'viewer', 'group:ops': 'operator' } },
  { name: 'p2', members: { bob: 'admin' } },
  { name: 'p3' },
];

test('a user gets the roles its name and groups are bound to, the strongest per project', () => {
  const id = withMemberships({ name: 'alice', authenticator: 'ldap', groups: ['ops'], roles: { p9: 'viewer' } }, projects);
  assert.deepEqual(id.roles, { p9: 'viewer', p1: 'operator' });
});

test('a binding never weakens a role the authenticator gave', () => {
  const id = withMemberships({ name: 'bob', authenticator: 'htpasswd', roles: { p2: 'admin', p1: 'admin' } }, projects);
  assert.deepEqual(id.roles, { p2: 'admin', p1: 'admin' });
});

test('scoped tokens and host credentials keep exactly their own roles', () => {
  const token = { name: 'alice', authenticator: 'scoped-token', roles: { p3: 'viewer' as const } };
  assert.equal(withMemberships(token, projects), token);
  const node = { name: 'alice', authenticator: 'node-credential', node: 'h1' };
  assert.equal(withMemberships(node, projects), node);
});

test('an unbound user is returned unchanged', () => {
  const id = { name: 'carol', authenticator: 'htpasswd' };
  assert.equal(withMemberships(id, projects), id);
});
