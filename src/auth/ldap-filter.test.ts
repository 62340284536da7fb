import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeFilterValue, normalizeDn, renderFilter } from './ldap-filter.ts';

test('filter values are escaped as RFC 4515 says', () => {
  assert.equal(escapeFilterValue('Parens R Us (for all your parenthetical needs)'), 'Parens R Us \\28for all your parenthetical needs\\29');
  assert.equal(escapeFilterValue('*'), '\\2a');
  assert.equal(escapeFilterValue('C:\\MyFile'), 'C:\\5cMyFile');
  assert.equal(escapeFilterValue('a\u0000b'), 'a\\00b');
  assert.equal(escapeFilterValue('Lučić'), 'Lučić');
});

test('a filter template is filled with escaped values and refuses unknown placeholders', () => {
  assert.equal(renderFilter('(&(objectClass=person)(uid={user}))', { user: 'x)(uid=*' }), '(&(objectClass=person)(uid=x\\29\\28uid=\\2a))');
  assert.throws(() => renderFilter('(uid={login})', { user: 'a' }), /unknown placeholder "\{login\}"/);
});

test('DNs compare without regard to case or spaces around separators', () => {
  assert.equal(normalizeDn(' CN=Ops, OU=Groups ,DC=Crowd,dc=test'), 'cn=ops,ou=groups,dc=crowd,dc=test');
});
