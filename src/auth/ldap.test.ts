import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api/errors.ts';
import { missingTools } from '../base/require-tool.ts';
import type { AuthRequest, AuthResult } from './authenticator.ts';
import { formatBasic } from './basic-credentials.ts';
import { LdapAuthenticator, type LdapOptions } from './ldap.ts';
import { bufferLogger } from './log-buffer.ts';
import { slapdSuffix as base, startSlapd } from './slapd-fixture.ts';

const skip = missingTools('slapd', 'ldapadd', 'openssl');

const people = `ou=people,${base}`;
const groupsBase = `ou=groups,${base}`;

function person(uid: string, password: string): string {
  return `dn: uid=${uid},${people}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nuserPassword: ${password}\n`;
}

function group(cn: string, members: string[]): string {
  return `dn: cn=${cn},${groupsBase}\nobjectClass: groupOfNames\ncn: ${cn}\n${members.map((m) => `member: uid=${m},${people}\n`).join('')}`;
}

const directory = [
  `dn: ${people}\nobjectClass: organizationalUnit\nou: people\n`,
  `dn: ${groupsBase}\nobjectClass: organizationalUnit\nou: groups\n`,
  person('alice', 'alice pw'),
  person('bob', 'bob:pw:with:colons'),
  person('carol', 'carol pw'),
  person('st*r', 'star pw'),
  group('ops', ['alice']),
  group('admins', ['bob']),
  group('viewers', ['alice', 'carol']),
].join('\n');

const groups: LdapOptions['groups'] = {
  [`CN=Ops, OU=Groups, ${base}`]: [{ project: 'p1', role: 'operator' }],
  [`cn=admins,${groupsBase}`]: [{ role: 'cluster-admin' }],
  [`cn=viewers,${groupsBase}`]: [{ project: 'p2', role: 'viewer' }, { project: 'p1', role: 'viewer' }],
};

function req(user: string, password: string): AuthRequest {
  return { authorization: formatBasic(user, password), method: 'GET', path: '/v1/vms', source: '127.0.0.1' };
}

async function rejection(p: Promise<AuthResult>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  assert.fail('expected an ApiError');
}

test('LDAP authentication against a private slapd', { skip }, async (t) => {
  const slapd = await startSlapd(t);
  slapd.add(directory);
  const log = bufferLogger();
  const options = (extra: Partial<LdapOptions> = {}): LdapOptions => ({
    url: slapd.url,
    bindDn: `cn=svc,${base}`,
    bindPassword: 'svcpw',
    userBase: people,
    groups,
    logger: log.logger,
    ...extra,
  });
  const memberOf = new LdapAuthenticator(options());

  await t.test('a user with the right password gets the roles of their groups (memberOf)', async () => {
    const alice = await memberOf.authenticate(req('alice', 'alice pw'));
    assert.ok(alice.outcome === 'ok');
    const { groups: aliceGroups, ...aliceRest } = alice.identity;
    assert.deepEqual(aliceRest, { name: 'alice', authenticator: 'ldap', roles: { p1: 'operator', p2: 'viewer' } });
    assert.deepEqual(new Set(aliceGroups), new Set(['ops', `cn=ops,${groupsBase}`, 'viewers', `cn=viewers,${groupsBase}`]));
    const bob = await memberOf.authenticate(req('bob', 'bob:pw:with:colons'));
    assert.ok(bob.outcome === 'ok');
    assert.deepEqual({ ...bob.identity, groups: undefined }, { name: 'bob', authenticator: 'ldap', clusterAdmin: true, groups: undefined });
  });

  await t.test('the identity carries the directory spelling of the name', async () => {
    const r = await memberOf.authenticate(req('ALICE', 'alice pw'));
    assert.equal(r.outcome === 'ok' && r.identity.name, 'alice');
  });

  await t.test('groups found by a group search give the same roles', async () => {
    const search = new LdapAuthenticator(options({ groupSearch: { base: groupsBase } }));
    const alice = await search.authenticate(req('alice', 'alice pw'));
    assert.deepEqual(alice.outcome === 'ok' && alice.identity.roles, { p1: 'operator', p2: 'viewer' });
    const r = await search.authenticate(req('carol', 'carol pw'));
    assert.deepEqual(r.outcome === 'ok' && r.identity.roles, { p1: 'viewer', p2: 'viewer' });
  });

  await t.test('a wrong password is denied, an unknown user passed on, an empty password never binds', async () => {
    assert.deepEqual(await memberOf.authenticate(req('alice', 'wrong')), { outcome: 'deny', reason: 'wrong password' });
    assert.deepEqual(await memberOf.authenticate(req('nobody', 'alice pw')), { outcome: 'skip' });
    assert.deepEqual(await memberOf.authenticate(req('alice', '')), { outcome: 'deny', reason: 'empty password' });
    assert.deepEqual(await memberOf.authenticate({ ...req('a', 'b'), authorization: 'Bearer x' }), { outcome: 'skip' });
  });

  await t.test('filter metacharacters in the login name match only literally', async () => {
    assert.deepEqual(await memberOf.authenticate(req('*', 'alice pw')), { outcome: 'skip' });
    assert.deepEqual(await memberOf.authenticate(req('al*', 'alice pw')), { outcome: 'skip' });
    assert.deepEqual(await memberOf.authenticate(req('alice)(uid=*', 'alice pw')), { outcome: 'skip' });
    assert.equal((await memberOf.authenticate(req('st*r', 'star pw'))).outcome, 'ok');
  });

  await t.test('StartTLS and ldaps work with the CA configured and fail closed without it', async () => {
    const startTls = new LdapAuthenticator(options({ startTls: true, caPem: slapd.caPem }));
    assert.equal((await startTls.authenticate(req('alice', 'alice pw'))).outcome, 'ok');
    const ldaps = new LdapAuthenticator(options({ url: slapd.ldapsUrl, caPem: slapd.caPem }));
    assert.equal((await ldaps.authenticate(req('alice', 'alice pw'))).outcome, 'ok');
    const untrusted = new LdapAuthenticator(options({ url: slapd.ldapsUrl }));
    assert.equal((await rejection(untrusted.authenticate(req('alice', 'alice pw')))).code, 'unavailable');
    const untrustedStartTls = new LdapAuthenticator(options({ startTls: true }));
    assert.equal((await rejection(untrustedStartTls.authenticate(req('alice', 'alice pw')))).code, 'unavailable');
  });

  await t.test('a broken service account or an unreachable directory is unavailable, not a wrong password', async () => {
    const badService = new LdapAuthenticator(options({ bindPassword: 'not-the-svc-pw' }));
    const e = await rejection(badService.authenticate(req('alice', 'alice pw')));
    assert.equal(e.code, 'unavailable');
    assert.equal(e.message, 'Cannot authenticate: the directory is unavailable');
    const down = new LdapAuthenticator(options({ url: 'ldap://127.0.0.1:1', timeoutMs: 2000 }));
    assert.equal((await rejection(down.authenticate(req('alice', 'alice pw')))).code, 'unavailable');
    assert.match(log.text(), /service account \\"cn=svc,dc=crowd,dc=test\\" cannot bind/);
  });

  await t.test('no password appears in the log', () => {
    const text = log.text();
    assert.ok(text.length > 0);
    for (const secret of ['alice pw', 'bob:pw', 'svcpw', 'not-the-svc-pw', 'star pw']) assert.ok(!text.includes(secret), secret);
  });
});
