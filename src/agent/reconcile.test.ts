import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { VmConfig, VmInfo } from './drivers/driver.ts';
import { backoffMs, nicChanges, nicOpKey, reconcile, unplugsFirst, type DesiredVm, type RestartState } from './reconcile.ts';

const config = (id: string): VmConfig => ({ id, name: id, cpus: 1, memoryMiB: 256, image: { path: '/img', format: 'qcow2' }, diskGiB: 1, accel: 'tcg' });
const want = (id: string, extra: Partial<DesiredVm> = {}): DesiredVm => ({ id, power: 'running', restartPolicy: 'always', config: config(id), ...extra });
const info = (id: string, state: VmInfo['state'], exit?: VmInfo['exit']): VmInfo => ({ id, name: id, state, ...(exit ? { exit } : {}) });
const map = <T extends { id: string }>(...xs: T[]) => new Map(xs.map((x) => [x.id, x]));
const run = (d: DesiredVm[], a: VmInfo[], restarts: [string, RestartState][] = [], now = 1000) =>
  reconcile(map(...d), map(...a), { now, restarts: new Map(restarts) }).map((s) => `${s.op} ${s.id}${'reason' in s ? ` ${s.reason}` : ''}${'phase' in s ? ` ${s.phase}` : ''}`);

const poweroff = { kind: 'poweroff' as const, message: 'guest', at: 1 };
const forced = { kind: 'forced' as const, message: 'driver', at: 1 };
const stopped = { kind: 'stopped' as const, message: 'on request', at: 1 };
const crash = { kind: 'crash' as const, message: 'killed by SIGKILL', at: 1 };

test('the reconciler table', () => {
  const cases: [string, DesiredVm[], VmInfo[], string[]][] = [
    ['a new VM starts', [want('a')], [], ['start a create']],
    ['a running VM is left alone', [want('a')], [info('a', 'running')], []],
    ['a VM to stop is stopped', [want('a', { power: 'stopped' })], [info('a', 'running')], ['stop a']],
    ['a stopped VM that should run starts', [want('a')], [info('a', 'stopped', forced)], ['start a power-on']],
    ['a guest poweroff restarts with policy always', [want('a')], [info('a', 'stopped', poweroff)], ['start a restart']],
    ['a guest poweroff is respected with policy on-failure', [want('a', { restartPolicy: 'on-failure' })], [info('a', 'stopped', poweroff)], ['hold a stopped']],
    ['a guest poweroff is acknowledged when the VM is to stay stopped', [want('a', { power: 'stopped', restartPolicy: 'on-failure' })], [info('a', 'stopped', poweroff)], ['stop a']],
    ['a VM stopped on request powers on again with policy on-failure', [want('a', { restartPolicy: 'on-failure' })], [info('a', 'stopped', stopped)], ['start a power-on']],
    ['a VM stopped on request powers on again with policy never', [want('a', { restartPolicy: 'never' })], [info('a', 'stopped', stopped)], ['start a power-on']],
    ['a crash restarts with policy on-failure', [want('a', { restartPolicy: 'on-failure' })], [info('a', 'crashed', crash)], ['start a restart']],
    ['a crash with policy never fails', [want('a', { restartPolicy: 'never' })], [info('a', 'crashed', crash)], ['hold a failed']],
    ['a VM nobody wants is destroyed', [], [info('x', 'running')], ['destroy x']],
    ['a VM that cannot be built is held failed', [want('a', { config: undefined, problem: 'no image' })], [], ['hold a failed']],
    ['a stopped VM that should stay stopped needs nothing', [want('a', { power: 'stopped' })], [info('a', 'stopped', forced)], []],
  ];
  for (const [name, d, a, steps] of cases) assert.deepEqual(run(d, a), steps, name);
});

test('restarts wait for their backoff to pass', () => {
  assert.deepEqual(run([want('a')], [info('a', 'crashed', crash)], [['a', { failures: 2, nextAt: 5000 }]], 1000), []);
  assert.deepEqual(run([want('a')], [info('a', 'crashed', crash)], [['a', { failures: 2, nextAt: 5000 }]], 6000), ['start a restart']);
  assert.deepEqual(run([want('a')], [], [['a', { failures: 1, nextAt: 5000 }]], 1000), [], 'a failed start also waits');
});

const nic = (tap: string, mac = `52:54:00:00:00:${tap.slice(-2)}`) => ({ tap, mac });
const withNics = (id: string, nics: ReturnType<typeof nic>[]): DesiredVm => want(id, { config: { ...config(id), nics } });
const live = (id: string, nics: ReturnType<typeof nic>[]): VmInfo => ({ ...info(id, 'running'), nics });

test('a running VM whose NICs differ from the desired ones gets them hot-plugged: unplug first, then plug in', () => {
  const steps = reconcile(map(withNics('a', [nic('t01'), nic('t03')])), map(live('a', [nic('t01'), nic('t02')])), { now: 0, restarts: new Map() });
  assert.deepEqual(steps, [{ op: 'nics', id: 'a', attach: [nic('t03')], detach: [nic('t02')] }]);
});

test('NIC changes that failed before wait for the next start; the others still happen', () => {
  const failed = new Map([['a', new Set([nicOpKey('detach', nic('t02'))])]]);
  const run = (live2: VmInfo) => reconcile(map(withNics('a', [nic('t01'), nic('t03')])), map(live2), { now: 0, restarts: new Map(), failedNics: failed });
  assert.deepEqual(run(live('a', [nic('t01'), nic('t02')])), [{ op: 'nics', id: 'a', attach: [nic('t03')], detach: [] }]);
  assert.deepEqual(run(live('a', [nic('t01'), nic('t02'), nic('t03')])), [], 'only the failed unplug is left: nothing to do until the restart');
});

test('NICs are left alone when they match, when the driver does not know them, and on a VM that is not running', () => {
  const ctx = { now: 0, restarts: new Map() };
  assert.deepEqual(reconcile(map(withNics('a', [nic('t01', '52:54:00:AA:00:01')])), map(live('a', [nic('t01', '52:54:00:aa:00:01')])), ctx), [], 'MACs compare case-insensitively');
  assert.deepEqual(reconcile(map(withNics('a', [nic('t01')])), map(info('a', 'running')), ctx), []);
  assert.deepEqual(reconcile(map(withNics('a', [nic('t01')])), map(live('a', [])), ctx).map((s) => s.op), ['nics']);
  assert.deepEqual(reconcile(map({ ...withNics('a', [nic('t01')]), power: 'stopped' }), map(live('a', [])), ctx).map((s) => s.op), ['stop']);
  assert.deepEqual(reconcile(map({ ...withNics('a', [nic('t01')]), config: undefined, problem: 'waiting for addresses' }), map(live('a', [])), ctx), [], 'a NIC still waiting for its network is not plugged in yet');
});

test('a tap that comes back with another MAC is unplugged and plugged in again', () => {
  assert.deepEqual(nicChanges([nic('t01', '52:54:00:00:00:09')], [nic('t01', '52:54:00:00:00:01')]), {
    attach: [nic('t01', '52:54:00:00:00:09')],
    detach: [nic('t01', '52:54:00:00:00:01')],
  });
});

test('before the host network drops taps, running guests unplug the NICs on them, except those they refused before', () => {
  const actual = map(live('a', [nic('t01'), nic('t02')]), live('b', [nic('t03')]), { ...info('c', 'stopped', forced), nics: [nic('t04')] });
  assert.deepEqual(unplugsFirst(actual, new Set(['t01', 't03'])), [{ op: 'nics', id: 'a', attach: [], detach: [nic('t02')] }]);
  assert.deepEqual(unplugsFirst(actual, new Set(['t01', 't03']), new Map([['a', new Set([nicOpKey('detach', nic('t02'))])]])), []);
  assert.deepEqual(unplugsFirst(actual, new Set()).map((s) => s.id), ['a', 'b'], 'a stopped VM holds no tap');
});

test('property: steps only touch known VMs, never start a VM twice, and destroy exactly the unwanted', () => {
  const states: VmInfo['state'][] = ['running', 'stopped', 'crashed'];
  const policies: DesiredVm['restartPolicy'][] = ['always', 'on-failure', 'never'];
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let round = 0; round < 500; round++) {
    const desired: DesiredVm[] = [];
    const actual: VmInfo[] = [];
    for (let i = 0; i < 6; i++) {
      const id = `vm${i}`;
      if (rnd() < 0.7) desired.push(want(id, { power: rnd() < 0.8 ? 'running' : 'stopped', restartPolicy: policies[Math.floor(rnd() * 3)]! }));
      if (rnd() < 0.6) actual.push({ ...info(id, states[Math.floor(rnd() * 3)]!, rnd() < 0.5 ? poweroff : crash), ...(rnd() < 0.5 ? { nics: [nic('t01')] } : {}) });
    }
    const steps = reconcile(map(...desired), map(...actual), { now: 0, restarts: new Map() });
    const ids = steps.map((s) => s.id);
    assert.equal(new Set(ids).size, ids.length, 'one step per VM');
    const wanted = new Set(desired.map((d) => d.id));
    for (const s of steps) {
      if (s.op === 'destroy') assert.ok(!wanted.has(s.id));
      else assert.ok(wanted.has(s.id));
      if (s.op === 'start') assert.notEqual(actual.find((a) => a.id === s.id)?.state, 'running');
      if (s.op === 'nics') assert.equal(actual.find((a) => a.id === s.id)?.state, 'running', 'only a running guest is hot-plugged');
    }
    for (const a of actual) if (!wanted.has(a.id)) assert.ok(steps.some((s) => s.op === 'destroy' && s.id === a.id));
  }
});

test('backoff grows exponentially with full jitter and a cap', () => {
  assert.equal(backoffMs(0, 0.5), 500);
  assert.equal(backoffMs(3, 1), 8000);
  assert.equal(backoffMs(30, 1, { capMs: 60_000 }), 60_000);
  assert.equal(backoffMs(5, 0), 0);
});
