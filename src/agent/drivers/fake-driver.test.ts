import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../base/clock.ts';
import { driverConformance } from './conformance.ts';
import { FakeDriver, FakeHost } from './fake-driver.ts';
import type { VmConfig } from './vm-config.ts';

function config(id: string, name = 'guest'): VmConfig {
  return { id, name, cpus: 1, memoryMiB: 256, image: { path: '/images/guest.qcow2', format: 'qcow2' }, diskGiB: 1, accel: 'tcg', disks: [{ name: 'data', sizeGiB: 1 }] };
}

driverConformance('fake', async () => {
  const host = new FakeHost();
  const make = () =>
    new FakeDriver({
      host,
      failStart: (c) => (c.image.path.endsWith('bad.qcow2') ? 'qemu-img: Image is not in qcow2 format' : undefined),
      ignoresPowerdown: (c) => c.name === 'deaf',
      refusesUnplug: (c) => c.name === 'deaf',
    });
  return {
    newDriver: make,
    config: (id) => config(id),
    deafConfig: (id) => config(id, 'deaf'),
    nic: async (i) => ({ tap: `ctfake${i}`, mac: `52:54:00:00:00:0${i + 1}` }),
    badConfig: (id) => ({ ...config(id), image: { path: '/images/bad.qcow2', format: 'qcow2' } }),
    badMessage: /not in qcow2 format/,
    marker: 'CROWD-GUEST-READY',
    crash: async (id) => host.crash(id),
    leftovers: async (id) => host.filesOf(id),
    cleanup: async () => {},
    bootTimeoutMs: 2000,
  };
});

test('start takes the configured latency on the injected clock', async () => {
  const clock = new FakeClock();
  const d = new FakeDriver({ clock, startLatencyMs: 500, bootMs: 1000 });
  let done = false;
  const started = d.start(config('a')).then((i) => ((done = true), i));
  clock.advance(499);
  await Promise.resolve();
  assert.equal(done, false);
  clock.advance(1);
  const info = await started;
  assert.equal(info.startedAt, clock.now());
  assert.equal(await d.consoleLog('a'), '');
  clock.advance(1000);
  await Promise.resolve();
  assert.match(await d.consoleLog('a'), /CROWD-GUEST-READY/);
});

test('a guest that has not booted yet is hard-stopped after the timeout', async () => {
  const clock = new FakeClock();
  const d = new FakeDriver({ clock, bootMs: 10_000 });
  await d.start(config('a'));
  const stopping = d.stop('a', { timeoutMs: 2000 });
  clock.advance(2000);
  const info = await stopping;
  assert.equal(info.exit?.kind, 'forced');
  assert.equal(info.exit?.at, clock.now());
});

test('a crash injected on the host is seen by every driver instance at the clock\'s time', async () => {
  const clock = new FakeClock();
  const host = new FakeHost(clock);
  const { pid } = await new FakeDriver({ host }).start(config('a'));
  const other = new FakeDriver({ host });
  assert.equal((await other.recover('a')).pid, pid);
  clock.advance(5000);
  host.crash('a', 'QEMU was killed by SIGSEGV');
  assert.deepEqual((await other.inspect('a')).exit, { kind: 'crash', message: 'QEMU was killed by SIGSEGV', at: clock.now() });
});

test('failure injection makes start fail with the given reason and leaves nothing', async () => {
  const d = new FakeDriver({ failStart: (c) => (c.cpus > 4 ? 'not enough host CPUs' : undefined) });
  await assert.rejects(d.start({ ...config('a'), cpus: 8 }), /Cannot start vm "guest": not enough host CPUs/);
  assert.deepEqual(await d.list(), []);
});

test('one process holds 200 simulated hosts with 50 VMs each', async () => {
  const hosts = Array.from({ length: 200 }, () => new FakeDriver());
  for (const [h, d] of hosts.entries()) {
    for (let i = 0; i < 50; i++) await d.start(config(`vm-${h}-${i}`));
  }
  const counts = await Promise.all(hosts.map(async (d) => (await d.list()).filter((v) => v.state === 'running').length));
  assert.deepEqual(new Set(counts), new Set([50]));
});
