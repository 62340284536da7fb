import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../base/clock.ts';
import { parseTokenTtl, TokenAuthority } from './token-authority.ts';

test('TTLs from 1 to 21600 seconds are accepted, anything else is not', () => {
  assert.equal(parseTokenTtl('1'), 1);
  assert.equal(parseTokenTtl('21600'), 21600);
  for (const bad of [undefined, '', '0', '21601', '-1', '1.5', ' 60', '60s', '0x10', '999999999', ['60', '60']]) {
    assert.equal(parseTokenTtl(bad), undefined, String(bad));
  }
});

test('a token is valid for its guest until its TTL passes on the clock', () => {
  const clock = new FakeClock();
  const tokens = new TokenAuthority({ clock });
  const t = tokens.issue('vm_a', 60);
  assert.ok(tokens.verify(t, 'vm_a'));
  clock.advance(59_999);
  assert.ok(tokens.verify(t, 'vm_a'));
  clock.advance(1);
  assert.equal(tokens.verify(t, 'vm_a'), false);
});

test('a token is bound to the guest that asked for it', () => {
  const tokens = new TokenAuthority({ clock: new FakeClock() });
  const t = tokens.issue('vm_a', 600);
  assert.equal(tokens.verify(t, 'vm_b'), false);
});

test('forged, tampered, truncated and foreign tokens are rejected without throwing', () => {
  const clock = new FakeClock();
  const tokens = new TokenAuthority({ clock });
  const other = new TokenAuthority({ clock });
  const t = tokens.issue('vm_a', 600);
  const flipped = (t[10] === 'A' ? 'B' : 'A');
  for (const bad of ['', 'x', t.slice(0, -2), t.slice(0, 10) + flipped + t.slice(11), `${t}AAAA`, 'A'.repeat(48), '!'.repeat(48), 'A'.repeat(10_000), other.issue('vm_a', 600)]) {
    assert.equal(tokens.verify(bad, 'vm_a'), false, bad.slice(0, 20));
  }
});
