import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { FakeClock } from '../base/clock.ts';
import { Wakeup } from './wakeup.ts';

const hour = 3600_000;

test('a wake while the loop is busy makes its next sleep return at once, and only that one', async () => {
  const clock = new FakeClock();
  const w = new Wakeup();
  const ac = new AbortController();
  w.wake();
  await w.sleep(hour, ac.signal, clock);
  let slept = false;
  const next = w.sleep(hour, ac.signal, clock).then(() => (slept = true));
  await Promise.resolve();
  assert.equal(slept, false, 'the wake was used up');
  clock.advance(hour);
  await next;
});

test('a wake cuts a sleep short, and an abort ends it leaving no listener behind', async () => {
  const clock = new FakeClock();
  const w = new Wakeup();
  const ac = new AbortController();
  const sleeping = w.sleep(hour, ac.signal, clock);
  w.wake();
  await sleeping;
  for (let i = 0; i < 50; i++) {
    const s = w.sleep(hour, ac.signal, clock);
    w.wake();
    await s;
  }
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  const last = w.sleep(hour, ac.signal, clock);
  ac.abort();
  await last;
  await w.sleep(hour, ac.signal, clock);
});
