import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { ExecRunner, FakeRunner } from '../../../base/runner.ts';
import { missingTools } from '../../../base/require-tool.ts';
import { detectAccel } from './detect-accel.ts';

// /dev/null stands in for an accessible /dev/kvm in the unit tests.
const device = '/dev/null';

test('CROWD_ACCEL decides without probing', async () => {
  const runner = new FakeRunner();
  assert.deepEqual(await detectAccel({ runner, override: 'tcg' }), { accel: 'tcg', reason: 'set by CROWD_ACCEL=tcg' });
  assert.equal((await detectAccel({ runner, override: 'kvm' })).accel, 'kvm');
  assert.deepEqual(runner.calls, []);
  await assert.rejects(detectAccel({ runner, override: 'xen' }), /Cannot use CROWD_ACCEL "xen": expected "kvm" or "tcg"/);
});

test('no usable KVM device means TCG without probing', async () => {
  const runner = new FakeRunner();
  const r = await detectAccel({ runner, kvmDevice: '/nonexistent/kvm' });
  assert.deepEqual(r, { accel: 'tcg', reason: '/nonexistent/kvm is missing or not accessible' });
  assert.deepEqual(runner.calls, []);
});

test('KVM is chosen only when the probe kernel really runs to its panic', async () => {
  const works = new FakeRunner().on(/accel=kvm/, { stdout: 'Kernel panic - not syncing: VFS: Unable to mount root fs' });
  assert.equal((await detectAccel({ runner: works, kvmDevice: device, kernel: '/boot/vmlinuz-test' })).accel, 'kvm');
  assert.match(works.lines()[0]!, /-machine pc,accel=kvm -cpu host .*-no-reboot .*-kernel \/boot\/vmlinuz-test/);
  assert.equal(works.calls[0]!.timeoutMs, 5000);

  const silent = new FakeRunner().on(/accel=kvm/, { stdout: '' });
  assert.deepEqual(await detectAccel({ runner: silent, kvmDevice: device, kernel: '/k' }), {
    accel: 'tcg',
    reason: 'the KVM probe guest exited without reaching its kernel',
  });
});

test('a probe that hangs or aborts falls back to TCG with the reason', async () => {
  const hung = new FakeRunner().on(/accel=kvm/, { code: 137, stderr: 'killed by SIGKILL' });
  assert.deepEqual(await detectAccel({ runner: hung, kvmDevice: device, kernel: '/k', timeoutMs: 3000 }), {
    accel: 'tcg',
    reason: 'the KVM probe guest hung for 3000 ms',
  });
  const aborted = new FakeRunner().on(/accel=kvm/, { code: 134, stderr: 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69' });
  assert.match((await detectAccel({ runner: aborted, kvmDevice: device, kernel: '/k' })).reason, /probe guest failed: .*failed to set MSR/);
});

test('on this host a real probe settles on an accelerator within its timeout', { skip: missingTools('qemu-system-x86_64') }, async () => {
  const r = await detectAccel({ runner: new ExecRunner(), timeoutMs: 5000 });
  assert.ok(r.accel === 'kvm' || r.accel === 'tcg');
  if (!existsSync('/dev/kvm')) assert.equal(r.accel, 'tcg');
  // The probe's own argv must be acceptable to this QEMU, whatever the verdict.
  assert.doesNotMatch(r.reason, /invalid|unknown|unrecognized|not supported|No such file/i);
});
