import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api/errors.ts';
import { FakeClock } from '../base/clock.ts';
import { formatBasic } from './basic-credentials.ts';
import { failureKey, RateLimiter, sourceKey } from './rate-limiter.ts';

function limited(fn: () => void): ApiError | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  return undefined;
}

test('a source is limited after its burst of failures and may retry once the bucket refills', () => {
  const clock = new FakeClock();
  const rl = new RateLimiter({ clock, perSource: { burst: 3, perMinute: 6 }, perUser: { burst: 100, perMinute: 100 } });
  const key = { source: '192.0.2.1' };
  for (let i = 0; i < 3; i++) {
    assert.equal(limited(() => rl.check(key)), undefined);
    rl.fail(key);
  }
  const err = limited(() => rl.check(key));
  assert.equal(err?.code, 'rate_limited');
  assert.equal(err?.status, 429);
  assert.deepEqual(err?.headers, { 'retry-after': '10' });
  assert.equal(limited(() => rl.check({ source: '192.0.2.2' })), undefined, 'other sources are not affected');
  clock.advance(9_000);
  assert.equal(limited(() => rl.check(key))?.headers?.['retry-after'], '1');
  clock.advance(1_000);
  assert.equal(limited(() => rl.check(key)), undefined);
});

test('a user is limited across sources', () => {
  const clock = new FakeClock();
  const rl = new RateLimiter({ clock, perUser: { burst: 2, perMinute: 1 } });
  rl.fail({ source: '10.0.0.1', user: 'alice' });
  rl.fail({ source: '10.0.0.2', user: 'alice' });
  const err = limited(() => rl.check({ source: '10.0.0.3', user: 'alice' }));
  assert.equal(err?.headers?.['retry-after'], '60');
  assert.equal(limited(() => rl.check({ source: '10.0.0.3', user: 'bob' })), undefined);
  assert.equal(limited(() => rl.check({ source: '10.0.0.3' })), undefined);
});

test('IPv6 sources share a bucket per /64 and IPv4-mapped addresses count as IPv4', () => {
  assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:db8:1:2:bbbb::9'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
  const rl = new RateLimiter({ clock: new FakeClock(), perSource: { burst: 1, perMinute: 1 } });
  rl.fail({ source: '2001:db8::1' });
  assert.equal(limited(() => rl.check({ source: '2001:db8::2' }))?.code, 'rate_limited');
});

test('the number of buckets kept is bounded', () => {
  const rl = new RateLimiter({ clock: new FakeClock(), perSource: { burst: 1, perMinute: 1 }, maxKeys: 2 });
  rl.fail({ source: '10.0.0.1' });
  rl.fail({ source: '10.0.0.2' });
  rl.fail({ source: '10.0.0.3' });
  assert.equal(limited(() => rl.check({ source: '10.0.0.1' })), undefined, 'the oldest bucket was dropped');
  assert.equal(limited(() => rl.check({ source: '10.0.0.3' }))?.code, 'rate_limited');
});

test('the failure key names the user of Basic and TOTP headers, and only the source otherwise', () => {
  const req = { method: 'GET', path: '/v1/vms', source: '10.0.0.1' };
  assert.deepEqual(failureKey({ ...req, authorization: formatBasic('alice', 'pw') }), { source: '10.0.0.1', user: 'alice' });
  assert.deepEqual(failureKey({ ...req, authorization: formatBasic('bob', 'pw:123456', 'TOTP') }), { source: '10.0.0.1', user: 'bob' });
  assert.deepEqual(failureKey({ ...req, authorization: 'Bearer abc' }), { source: '10.0.0.1' });
});
