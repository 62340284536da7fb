import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { ApiError } from '../../api/errors.ts';
import type { Driver, VmInfo } from './driver.ts';
import type { NicConfig, VmConfig } from './vm-config.ts';

/** What the suite needs from one driver implementation. */
export interface DriverHarness {
  /** A new driver instance over the same host, as after an agent restart. */
  newDriver(): Driver;
  /** A VM that boots and prints `marker` on its serial console at every boot. */
  config(id: string): VmConfig;
  /** A VM whose guest answers neither the power button nor a NIC unplug right after start. */
  deafConfig(id: string): VmConfig;
  /** The i-th NIC for hot-plug tests, its tap ready on the host. */
  nic(i: number): Promise<NicConfig>;
  /** A VM whose start fails (e.g. a corrupt base image); the error must match `badMessage`. */
  badConfig(id: string): VmConfig;
  badMessage: RegExp;
  marker: string;
  /** Kills the VM's process from outside the driver. */
  crash(id: string, pid: number): Promise<void>;
  /** The files the VM still has on the host. */
  leftovers(id: string): Promise<string[]>;
  /** Removes everything the harness created, even after a failure. */
  cleanup(): Promise<void>;
  /** Upper bound for a guest to boot to its marker. */
  bootTimeoutMs: number;
}

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

/** Waits (with a deadline) until the console log holds at least `n` markers; returns the count. */
async function waitForMarkers(d: Driver, id: string, marker: string, n: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = count(await d.consoleLog(id), marker);
    if (seen >= n) return seen;
    if (Date.now() > deadline) assert.fail(`console of "${id}" showed "${marker}" ${seen} times, wanted ${n}, within ${timeoutMs} ms`);
    await delay(50);
  }
}

async function waitNotRunning(d: Driver, id: string, timeoutMs: number): Promise<VmInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await d.inspect(id);
    if (info.state !== 'running' || Date.now() > deadline) return info;
    await delay(20);
  }
}

function isCode(code: string, pattern?: RegExp) {
  return (e: unknown) => e instanceof ApiError && e.code === code && (!pattern || pattern.test(e.message));
}

/** The one driver conformance suite: every Driver implementation runs it. */
export function driverConformance(name: string, setup: () => Promise<DriverHarness>, opts: { skip?: string | undefined } = {}): void {
  describe(`${name} driver conformance`, { skip: opts.skip }, () => {
    let h: DriverHarness;
    let d: Driver;
    const id = `conf-${process.pid}`;
    let markers = 0;
    let pid = 0;
    let nics: NicConfig[] = [];

    before(async () => {
      h = await setup();
      d = h.newDriver();
    });
    after(async () => {
      await d?.close();
      await h?.cleanup();
    });

    it('rejects a bad config with a clear error and creates nothing', async () => {
      await assert.rejects(d.start({ ...h.config(id), cpus: 0, name: 'Bad Name' }), isCode('invalid', /cpus .*name|name .*cpus/));
      await assert.rejects(d.inspect(id), isCode('not_found'));
      assert.deepEqual(await h.leftovers(id), []);
    });

    it('starts a VM and reports it running with its pid', async () => {
      const info = await d.start(h.config(id));
      assert.equal(info.state, 'running');
      assert.ok(info.pid && info.pid > 0);
      pid = info.pid;
      assert.deepEqual(await d.inspect(id), info);
    });

    it('shows the guest marker in the console log', async () => {
      markers = await waitForMarkers(d, id, h.marker, 1, h.bootTimeoutMs);
    });

    it('refuses to start a VM that is already running', async () => {
      await assert.rejects(d.start(h.config(id)), isCode('conflict', /already running/));
    });

    it('carries console input to the guest and its output back, one attachment at a time', async () => {
      const stream = await d.attachConsole(id);
      try {
        await assert.rejects(d.attachConsole(id), isCode('conflict'));
        let got = '';
        const seen = new Promise<void>((resolve) => stream.on('data', (b: Buffer) => (got += b.toString()).includes('crowd-attach-check') && resolve()));
        stream.write('echo crowd-attach-check\n');
        await Promise.race([seen, delay(h.bootTimeoutMs).then(() => assert.fail(`no echo on the console, got ${JSON.stringify(got)}`))]);
      } finally {
        const closed = new Promise((resolve) => stream.once('close', resolve));
        stream.destroy();
        await closed;
      }
    });

    it('resets the guest in the same process', async () => {
      const info = await d.reset(id);
      assert.equal(info.pid, pid);
      markers = await waitForMarkers(d, id, h.marker, markers + 1, h.bootTimeoutMs);
    });

    it('stops the VM gracefully through the power button', async () => {
      const info = await d.stop(id, { timeoutMs: h.bootTimeoutMs });
      assert.equal(info.state, 'stopped');
      assert.equal(info.pid, undefined);
      assert.equal(info.exit?.kind, 'stopped');
      assert.equal((await d.stop(id)).state, 'stopped');
    });

    it('starts the stopped VM again on its own disks', async () => {
      const disks = async () => (await h.leftovers(id)).filter((f) => f.endsWith('.qcow2'));
      const before = await disks();
      assert.ok(before.length > 0);
      const info = await d.start(h.config(id));
      assert.equal(info.state, 'running');
      assert.deepEqual(await disks(), before);
      markers = await waitForMarkers(d, id, h.marker, markers + 1, h.bootTimeoutMs);
    });

    it('hot-plugs NICs into the running VM and reports them plugged in', async () => {
      nics = [await h.nic(0), await h.nic(1)];
      assert.deepEqual((await d.inspect(id)).nics, []);
      await d.attachNic(id, nics[0]!);
      const info = await d.attachNic(id, nics[1]!);
      assert.deepEqual(info.nics, nics);
      await assert.rejects(d.attachNic(id, nics[0]!), isCode('conflict', /plugged in already/));
      await assert.rejects(d.attachNic(id, { tap: 'bad tap name!', mac: '01:00:5e:00:00:01' }), isCode('invalid', /tap .*mac/));
    });

    it('reboots the VM as a new process whose guest boots again, with its hot-plugged NICs', async () => {
      const before = (await d.inspect(id)).pid;
      const info = await d.reboot(id, { timeoutMs: h.bootTimeoutMs });
      assert.equal(info.state, 'running');
      assert.notEqual(info.pid, before);
      assert.deepEqual(info.nics, nics);
      pid = info.pid!;
      markers = await waitForMarkers(d, id, h.marker, markers + 1, h.bootTimeoutMs);
    });

    it('lets a fresh driver instance re-adopt the running VM with the same pid and NICs', async () => {
      await d.close();
      d = h.newDriver();
      const listed = await d.list();
      assert.deepEqual(listed.map((v) => [v.id, v.state, v.pid, v.nics]), [[id, 'running', pid, nics]]);
      assert.equal((await d.recover(id)).pid, pid);
      assert.match(await d.consoleLog(id), new RegExp(h.marker));
    });

    it('unplugs a NIC the guest releases, and refuses one that is not plugged in', async () => {
      const info = await d.detachNic(id, nics[0]!, { timeoutMs: h.bootTimeoutMs });
      assert.deepEqual(info.nics, [nics[1]]);
      await assert.rejects(d.detachNic(id, nics[0]!), isCode('not_found'));
      await assert.rejects(d.detachNic(id, { ...nics[1]!, mac: '52:54:00:ff:ff:ff' }), isCode('not_found'));
      // The freed tap can be plugged in again.
      assert.deepEqual((await d.attachNic(id, nics[0]!)).nics, [nics[1], nics[0]]);
    });

    it('reports a VM whose process died as crashed', async () => {
      await h.crash(id, pid);
      const info = await waitNotRunning(d, id, 10_000);
      assert.equal(info.state, 'crashed');
      assert.equal(info.exit?.kind, 'crash');
      assert.equal((await d.inspect(id)).state, 'crashed');
    });

    it('refuses NIC changes on a VM that is not running', async () => {
      await assert.rejects(d.attachNic(id, nics[0]!), isCode('conflict', /not running/));
      await assert.rejects(d.detachNic(id, nics[0]!), isCode('conflict', /not running/));
    });

    it('reports an unplug the guest does not complete as needing a restart, and leaves the NIC out of the next start', async () => {
      const deaf = `${id}-deaf`;
      const nic = await h.nic(2);
      try {
        assert.deepEqual((await d.start({ ...h.deafConfig(deaf), nics: [nic] })).nics, [nic]);
        await assert.rejects(d.detachNic(deaf, nic, { timeoutMs: 300 }), isCode('conflict', /did not release it within 300 ms.*restart/));
        assert.deepEqual((await d.inspect(deaf)).nics, [nic], 'the guest still has it');
        await d.stop(deaf, { timeoutMs: 300 });
        const again = await d.reboot(deaf, { timeoutMs: 300 });
        assert.deepEqual(again.nics, []);
      } finally {
        await d.destroy(deaf);
      }
    });

    it('hard-stops a guest that ignores the power button after the timeout', async () => {
      const deaf = `${id}-deaf`;
      try {
        assert.equal((await d.start(h.deafConfig(deaf))).state, 'running');
        const info = await d.stop(deaf, { timeoutMs: 300 });
        assert.equal(info.state, 'stopped');
        assert.equal(info.exit?.kind, 'forced');
      } finally {
        await d.destroy(deaf);
      }
    });

    it('starts a crashed VM again', async () => {
      assert.equal((await d.start(h.config(id))).state, 'running');
    });

    it('destroys a running VM and removes every file', async () => {
      await d.destroy(id);
      await assert.rejects(d.inspect(id), isCode('not_found'));
      assert.deepEqual(await h.leftovers(id), []);
      assert.deepEqual(await d.list(), []);
      await d.destroy(id);
    });

    it('lists other VMs while a start is under way without taking the starting one for crashed', async () => {
      const other = `${id}-concurrent`;
      const starting = d.start(h.config(other));
      let done = false;
      void starting.finally(() => (done = true)).catch(() => undefined);
      while (!done) {
        for (const info of await d.list()) assert.notEqual(info.state, 'crashed', `${info.id} listed as crashed while starting`);
        await delay(5);
      }
      assert.equal((await starting).state, 'running');
      assert.equal((await d.inspect(other)).state, 'running');
      await d.destroy(other);
    });

    it('fails a start it cannot do with the reason and leaves nothing behind', async () => {
      const bad = `${id}-bad`;
      await assert.rejects(d.start(h.badConfig(bad)), isCode('invalid', h.badMessage));
      await assert.rejects(d.inspect(bad), isCode('not_found'));
      assert.deepEqual(await h.leftovers(bad), []);
    });
  });
}
