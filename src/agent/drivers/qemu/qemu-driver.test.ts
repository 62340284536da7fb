import assert from 'node:assert/strict';
import { once } from 'node:events';
import { constants, existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { missingRoot, missingTools } from '../../../base/require-tool.ts';
import { ExecRunner } from '../../../base/runner.ts';
import { ensureBusyboxDisk, guestMarkers } from '../../../../test/guests/busybox-disk.ts';
import { driverConformance } from '../conformance.ts';
import type { NicConfig, VmConfig } from '../vm-config.ts';
import { QemuDriver } from './qemu-driver.ts';
import { pciNics } from './qemu-nics.ts';
import { isVmProcess, readPid } from './qemu-process.ts';
import { QmpClient } from './qmp-client.ts';

const skip = missingTools('qemu-system-x86_64', 'qemu-img', 'mkfs.vfat', 'mcopy', 'syslinux', 'cpio', 'ip') ?? missingRoot();
const sh = new ExecRunner();
let sandboxes = 0;

/**
 * Everything one test creates lives in one temp dir and one network namespace,
 * where its QEMUs run (through a wrapper) and its taps live; cleanup kills its
 * QEMUs by pid and removes both.
 */
async function sandbox() {
  const root = await mkdtemp('/tmp/crowd-q-');
  const runDir = join(root, 'run');
  const ns = `crowdq${process.pid}-${sandboxes++}`;
  await sh.run({ argv: ['ip', 'netns', 'add', ns] });
  const qemu = join(root, 'qemu');
  await writeFile(qemu, `#!/bin/sh\nexec ip netns exec ${ns} qemu-system-x86_64 "$@"\n`, { mode: 0o755 });
  const driver = (machine?: string) => new QemuDriver({ runDir, qemuBinary: qemu, runAs: 'nobody', ...(machine ? { machine } : {}) });
  /** A tap in the namespace that QEMU (as nobody) may open, up, on no bridge. */
  const nic = async (i: number): Promise<NicConfig> => {
    const tap = `cq${i}`;
    await sh.run({ argv: ['ip', 'netns', 'exec', ns, 'ip', 'tuntap', 'add', 'dev', tap, 'mode', 'tap', 'user', 'nobody'] });
    await sh.run({ argv: ['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', tap, 'up'] });
    return { tap, mac: `52:54:00:00:0${i}:01` };
  };
  const base = await ensureBusyboxDisk();
  const config = (id: string, name = 'guest'): VmConfig => ({
    id, name, cpus: 1, memoryMiB: 256, image: { path: base, format: 'qcow2' }, diskGiB: 1, accel: 'tcg',
    disks: [{ name: 'data', sizeGiB: 1 }], smbios: { serial: 'ds=nocloud' },
  });
  const cleanup = async () => {
    for (const id of await readdir(runDir).catch(() => [] as string[])) {
      const pidFile = join(runDir, id, 'qemu.pid');
      const pid = await readPid(pidFile);
      if (pid && (await isVmProcess(pid, pidFile))) process.kill(pid, 'SIGKILL');
    }
    await sh.run({ argv: ['ip', 'netns', 'del', ns] }).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  };
  return { root, runDir, ns, driver, nic, config, cleanup };
}

async function consoleLogFd(pid: number, path: string): Promise<string> {
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === path) return fd;
  }
  return assert.fail(`QEMU ${pid} has no open fd on ${path}`);
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(50);
  }
}

driverConformance(
  'qemu',
  async () => {
    const s = await sandbox();
    const bad = join(s.root, 'bad.qcow2');
    await writeFile(bad, 'this is not a disk image\n');
    return {
      newDriver: () => s.driver(),
      config: (id) => s.config(id),
      deafConfig: (id) => s.config(id, 'deaf'),
      nic: s.nic,
      badConfig: (id) => ({ ...s.config(id), image: { path: bad, format: 'qcow2' } }),
      badMessage: /not in qcow2 format/,
      marker: guestMarkers.ready,
      crash: async (_id, pid) => void process.kill(pid, 'SIGKILL'),
      leftovers: async (id) => readdir(join(s.runDir, id)).catch(() => []),
      cleanup: s.cleanup,
      bootTimeoutMs: 60_000,
    };
  },
  { skip },
);

test('a QEMU that cannot start fails with QEMU\'s own error and leaves nothing', { skip, timeout: 60_000 }, async (t) => {
  const s = await sandbox();
  const d = s.driver();
  t.after(async () => {
    await d.close();
    await s.cleanup();
  });
  const cfg = { ...s.config('nokernel'), kernel: { path: join(s.root, 'missing-vmlinuz') } };
  await assert.rejects(d.start(cfg), (e: Error) => /Cannot start vm "guest": .*could not open kernel file/.test(e.message));
  assert.equal(existsSync(join(s.runDir, 'nokernel')), false);
});

test('a guest that powers off while no driver watches is found stopped, and QEMU ran unprivileged', { skip, timeout: 120_000 }, async (t) => {
  const s = await sandbox();
  let d = s.driver();
  t.after(async () => {
    await d.close();
    await s.cleanup();
  });
  const t0 = Date.now();
  const pid = (await d.start(s.config('self-off'))).pid!;
  await waitFor('the guest to boot', async () => (await d.consoleLog('self-off')).includes(guestMarkers.ready));
  t.diagnostic(`busybox disk guest: spawn to ${guestMarkers.ready} in ${Date.now() - t0} ms under TCG`);
  const uid = (await readFile(`/proc/${pid}/status`, 'utf8')).match(/^Uid:\s+(\d+)/m)?.[1];
  assert.notEqual(uid, '0');
  // The driver rotates the console log by copy-and-truncate, which needs QEMU to write it with O_APPEND.
  const logFd = await consoleLogFd(pid, join(s.runDir, 'self-off', 'console.log'));
  const flags = Number.parseInt((await readFile(`/proc/${pid}/fdinfo/${logFd}`, 'utf8')).match(/^flags:\s+(\d+)/m)![1]!, 8);
  assert.ok(flags & constants.O_APPEND);
  await d.close();
  // Type into the console directly, as if the agent were down.
  const sock = net.createConnection(join(s.runDir, 'self-off', 'console.sock'));
  await new Promise((resolve) => sock.once('connect', resolve));
  sock.end('poweroff -f\n');
  await waitFor('the guest to power off', async () => (await d.consoleLog('self-off')).includes('Power down'));
  d = s.driver();
  const info = await d.recover('self-off');
  assert.equal(info.state, 'stopped');
  assert.equal(info.exit?.kind, 'poweroff');
  assert.equal(await isVmProcess(pid, join(s.runDir, 'self-off', 'qemu.pid')), false);
  // Stopped on request afterwards: a later power-on is no longer held by the guest's own poweroff.
  assert.equal((await d.stop('self-off')).exit?.kind, 'stopped');
  const next = s.driver();
  t.after(() => next.close());
  assert.equal((await next.recover('self-off')).exit?.kind, 'stopped', 'recorded on disk, for the next driver too');
});

test('destroy stops the QEMU and removes the files even when the VM\'s config file is corrupt', { skip, timeout: 60_000 }, async (t) => {
  const s = await sandbox();
  const d = s.driver();
  t.after(async () => {
    await d.close();
    await s.cleanup();
  });
  const pid = (await d.start(s.config('corrupt'))).pid!;
  const dir = join(s.runDir, 'corrupt');
  await writeFile(join(dir, 'config.json'), '{not json');
  await d.close();
  const fresh = s.driver();
  t.after(() => fresh.close());
  await fresh.destroy('corrupt');
  assert.equal(await isVmProcess(pid, join(dir, 'qemu.pid')), false);
  assert.equal(existsSync(dir), false);
});

/** Types `cmd` on the guest's console until its output matches `want` (each try waits for output, the whole with a deadline). */
async function guestShows(d: QemuDriver, id: string, cmd: string, want: RegExp, timeoutMs = 60_000): Promise<void> {
  const stream = await d.attachConsole(id);
  let seen = '';
  stream.on('data', (b: Buffer) => (seen += b.toString()));
  try {
    await waitFor(`the guest to answer ${JSON.stringify(cmd)} with ${want}`, async () => {
      if (want.test(seen)) return true;
      seen = '';
      stream.write(`${cmd}\n`);
      await once(stream, 'data').catch(() => undefined);
      await delay(500);
      return want.test(seen);
    }, timeoutMs).catch((e: Error) => assert.fail(`${e.message}; last output: ${JSON.stringify(seen)}`));
  } finally {
    const closed = once(stream, 'close');
    stream.destroy();
    await closed;
  }
}

for (const machine of ['q35', 'pc']) test(`a NIC hot-plugged into a running ${machine} guest shows up inside it and over QMP, and unplugs again`, { skip, timeout: 240_000 }, async (t) => {
  const s = await sandbox();
  let d = s.driver(machine);
  t.after(async () => {
    await d.close();
    await s.cleanup();
  });
  const nic = await s.nic(0);
  const nics = 'echo NICS:$(ls /sys/class/net | tr "\\n" ,)';
  await d.start(s.config('hot'));
  await waitFor('the guest to boot', async () => (await d.consoleLog('hot')).includes(guestMarkers.ready));
  await guestShows(d, 'hot', nics, /NICS:lo,/);
  // A tap that does not exist cannot be opened by the unprivileged QEMU: refused, nothing left plugged in.
  await assert.rejects(d.attachNic('hot', { tap: 'cqmissing', mac: '52:54:00:00:09:01' }), (e: Error) => /Cannot hot-plug NIC "cqmissing" into vm "guest"/.test(e.message));
  assert.deepEqual((await d.inspect('hot')).nics, []);

  const plugAt = Date.now();
  assert.deepEqual((await d.attachNic('hot', nic)).nics, [nic]);
  t.diagnostic(`netdev_add + device_add took ${Date.now() - plugAt} ms`);
  await guestShows(d, 'hot', 'cat /sys/class/net/eth0/address', new RegExp(nic.mac));
  // QEMU itself says so, as a driver that re-adopts the VM asks it.
  await d.close();
  const q = await QmpClient.connect(join(s.runDir, 'hot', 'qmp.sock'));
  try {
    const found = pciNics(await q.execute('query-pci'));
    // q35 plugs it into the first reserved root port; i440fx straight onto its hot-pluggable root bus.
    assert.deepEqual(found.nics, [{ tap: nic.tap, ...(machine === 'q35' ? { port: 'nicport0' } : {}) }]);
    assert.equal(await q.execute('qom-get', { path: `/machine/peripheral/nic-${nic.tap}`, property: 'mac' }), nic.mac);
  } finally {
    q.close();
  }
  d = s.driver(machine);
  assert.deepEqual((await d.inspect('hot')).nics, [nic]);

  const t0 = Date.now();
  assert.deepEqual((await d.detachNic('hot', nic, { timeoutMs: 60_000 })).nics, []);
  t.diagnostic(`the guest released the NIC ${Date.now() - t0} ms after device_del under TCG`);
  await guestShows(d, 'hot', nics, /NICS:lo,/);
});
