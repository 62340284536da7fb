import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../api/errors.ts';
import { GuestPipe } from './guest-pipe.ts';

test('bytes written by the host are read once by the guest, and the other way round', () => {
  const p = new GuestPipe();
  p.hostWrite(Buffer.from('hello '));
  p.hostWrite(Buffer.from('guest'));
  assert.equal(p.guestRead()?.toString(), 'hello guest');
  assert.equal(p.guestRead(), undefined);
  p.guestWrite(Buffer.from('hi host'));
  assert.equal(p.hostRead()?.toString(), 'hi host');
  assert.equal(p.hostRead(), undefined);
});

test('a read takes at most the bytes asked for and leaves the rest', () => {
  const p = new GuestPipe();
  p.hostWrite(Buffer.from('abcdef'));
  assert.equal(p.guestRead(4)?.toString(), 'abcd');
  assert.equal(p.guestRead(4)?.toString(), 'ef');
});

test('a write beyond the cap fails whole with too_large and queues nothing', () => {
  const p = new GuestPipe({ capBytes: 8 });
  p.guestWrite(Buffer.from('12345'));
  assert.throws(() => p.guestWrite(Buffer.from('6789')), (e: unknown) => e instanceof ApiError && e.code === 'too_large');
  assert.deepEqual(p.pending(), { toGuest: 0, toHost: 5 });
  assert.throws(() => p.hostWrite(Buffer.alloc(9)), (e: unknown) => e instanceof ApiError && e.code === 'too_large');
});

test('the host is told when the guest writes', () => {
  const p = new GuestPipe();
  let calls = 0;
  const off = p.onGuestWrite(() => calls++);
  p.guestWrite(Buffer.from('x'));
  off();
  p.guestWrite(Buffer.from('y'));
  assert.equal(calls, 1);
});
