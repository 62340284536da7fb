import { objectWhen } from '../store/object-when.ts';
import { test } from 'node:test';
import { getEventListeners } from 'node:events';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../base/clock.ts';
import { silentLogger } from '../base/logger.ts';
import { Client } from '../client/client.ts';
import { Scheduler } from '../server/scheduler/scheduler.ts';
import { buildTestApp, type TestApp } from '../server/test-app.ts';
import { Agent } from './agent.ts';
import { testAgent } from './test-agent.ts';
import { AgentCache } from './agent-cache.ts';
import { FakeDriver, FakeHost } from './drivers/fake-driver.ts';
import type { NicConfig } from './drivers/vm-config.ts';
import { HostNetworkSync } from './host-network-sync.ts';
import { tapName } from './host-network.ts';
import { ApiError } from '../api/errors.ts';
import type { VmStatus } from '../api/kinds/vm.ts';
import type { Store } from '../store/store.ts';
import { hostNetworkRoutes } from '../server/ipam/host-network-view.ts';
import { IpamController } from '../server/ipam/ipam-controller.ts';
import { localImages } from './local-images.ts';
import { runAgent } from './main.ts';

const by = { author: 'test' };

async function serve(): Promise<{ t: TestApp; url: string; stop: () => Promise<void> }> {
  const t = await buildTestApp({ nodes: true });
  await t.seed();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  const ac = new AbortController();
  const scheduling = new Scheduler({ store: t.store, logger: silentLogger(), clock: systemClock }).run(ac.signal);
  return {
    t,
    url,
    stop: async () => {
      ac.abort();
      await scheduling;
      await t.close();
    },
  };
}

test('crowd agent enrols with a join token, then runs and stops the VMs bound to it and reports those it cannot build', async () => {
  const { t, url, stop } = await serve();
  const dir = mkdtempSync(join(tmpdir(), 'crowd-agent-'));
  writeFileSync(join(dir, 'debian.qcow2'), '');
  const ac = new AbortController();
  try {
    const { token } = await t.enrolment!.createJoinToken({ labels: { rack: 'r1' } }, 'admin');
    const running = runAgent({ server: url, joinToken: token, dataDir: join(dir, 'agent'), driver: 'fake', name: 'host-1', imageDir: dir }, ac.signal, silentLogger());
    await t.store.create({ kind: 'vm', name: 'web', spec: { image: 'debian', machineType: 'small' } }, by);
    const up = await objectWhen(t.store, { kind: 'vm', name: 'web' }, (v) => v.status.phase === 'running');
    assert.equal(up.status.node, 'host-1');
    const node = await t.store.get({ kind: 'node', idOrName: 'host-1' });
    assert.deepEqual(node.labels, { rack: 'r1' });
    await t.store.update({ kind: 'vm', idOrName: 'web' }, { labels: {}, metadata: {}, spec: { ...up.spec, power: 'stopped' } }, by);
    await objectWhen(t.store, { kind: 'vm', name: 'web' }, (v) => v.status.phase === 'stopped');
    // The host has the machine's CPUs; freeing "web" makes room for the next two.
    await t.store.delete({ kind: 'vm', idOrName: 'web' }, by);
    await t.store.create({ kind: 'vm', name: 'second', spec: { image: 'debian', machineType: 'small' } }, by);
    await t.store.create({ kind: 'image', name: 'missing', spec: {} }, by);
    await t.store.create({ kind: 'vm', name: 'broken', spec: { image: 'missing', machineType: 'small' } }, by);
    const broken = await objectWhen(t.store, { kind: 'vm', name: 'broken' }, (v) => v.status.phase === 'failed');
    assert.match(String(broken.status.lastError), /image "missing" is not available on this host/);
    await objectWhen(t.store, { kind: 'vm', name: 'second' }, (v) => v.status.phase === 'running');
    ac.abort();
    await running;
  } finally {
    ac.abort();
    await stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A TCP proxy in front of the server that can cut every connection and refuse new ones: a partition. */
async function partitionable(target: string): Promise<{ url: string; cut(): Promise<void>; heal(): Promise<void>; close(): Promise<void> }> {
  const { port: targetPort } = new URL(target);
  const sockets = new Set<Socket>();
  const server = createServer((c) => {
    const upstream = connect(Number(targetPort), '127.0.0.1');
    for (const s of [c, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    c.pipe(upstream).pipe(c);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const cut = async () => {
    await new Promise<void>((r) => {
      server.close(() => r());
      for (const s of sockets) s.destroy();
    });
  };
  return {
    url: `http://127.0.0.1:${port}`,
    cut,
    heal: () => new Promise<void>((r) => server.listen(port, '127.0.0.1', r)),
    close: async () => {
      if (server.listening) await cut();
    },
  };
}

test('cut off from the server, the agent keeps its VMs and restarts them per policy; after the heal it converges', async () => {
  const { t, url, stop } = await serve();
  const link = await partitionable(url);
  const dir = mkdtempSync(join(tmpdir(), 'crowd-agent-'));
  writeFileSync(join(dir, 'debian.qcow2'), '');
  const host = new FakeHost();
  const driver = new FakeDriver({ host });
  const cache = new AgentCache(join(dir, 'cache.db'));
  const ac = new AbortController();
  try {
    const credential = await t.enrol('host-2');
    const agent = testAgent({ node: 'host-2', url: link.url, authorization: credential, driver, cache, imageDir: dir }, {
      onPass: () => {
        passes++;
        for (const w of passWaiters.splice(0)) w();
      },
    });
    let passes = 0;
    const passWaiters: (() => void)[] = [];
    const afterPasses = async (n: number) => {
      const target = passes + n;
      while (passes < target) await new Promise<void>((r) => passWaiters.push(r));
    };
    const running = agent.run(ac.signal);
    await t.store.create({ kind: 'vm', name: 'db', spec: { image: 'debian', machineType: 'small', restartPolicy: 'on-failure' } }, by);
    await t.store.create({ kind: 'vm', name: 'batch', spec: { image: 'debian', machineType: 'small', restartPolicy: 'never' } }, by);
    const db = await objectWhen(t.store, { kind: 'vm', name: 'db' }, (v) => v.status.phase === 'running');
    const batch = await objectWhen(t.store, { kind: 'vm', name: 'batch' }, (v) => v.status.phase === 'running');
    const pid = (await driver.inspect(db.id)).pid;
    const settled = (await t.store.get({ kind: 'vm', idOrName: 'db' })).revision;
    await afterPasses(10);
    assert.equal((await t.store.get({ kind: 'vm', idOrName: 'db' })).revision, settled, 'a steady VM causes no status writes');

    await link.cut();
    host.crash(db.id);
    host.crash(batch.id);
    const deadline = Date.now() + 10_000;
    while ((await driver.inspect(db.id)).state !== 'running' && Date.now() < deadline) await afterPasses(1);
    const restarted = await driver.inspect(db.id);
    assert.equal(restarted.state, 'running', 'restarted per policy while cut off');
    assert.notEqual(restarted.pid, pid);
    assert.equal((await driver.inspect(batch.id)).state, 'crashed', 'policy never leaves it down');
    // Meanwhile the user stops "db" on the server, which the agent cannot hear yet.
    await t.store.update({ kind: 'vm', idOrName: 'db' }, { labels: {}, metadata: {}, spec: { ...db.spec, power: 'stopped' } }, by);

    await link.heal();
    await objectWhen(t.store, { kind: 'vm', name: 'db' }, (v) => v.status.phase === 'stopped');
    assert.equal((await driver.inspect(db.id)).state, 'stopped');
    const failed = await objectWhen(t.store, { kind: 'vm', name: 'batch' }, (v) => v.status.phase === 'failed');
    assert.match(String(failed.status.lastError), /SIGKILL/);
    assert.equal((await driver.list()).length, 2, 'no duplicate or lost VM after the heal');
    ac.abort();
    await running;
  } finally {
    ac.abort();
    cache.close();
    await link.close();
    await stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an agent that pauses thousands of times leaves no listeners behind on its run signal', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-agent-'));
  const cache = new AgentCache(join(dir, 'cache.db'));
  const ac = new AbortController();
  try {
    let passes = 0;
    let enough!: () => void;
    const reached = new Promise<void>((r) => (enough = r));
    const agent = new Agent({
      node: 'host-3',
      // Nothing listens there: every sync and report fails and backs off, while the reconcile loop ticks on.
      client: () => new Client({ baseUrl: 'http://127.0.0.1:9' }),
      driver: new FakeDriver(),
      cache,
      clock: systemClock,
      logger: silentLogger(),
      host: { accel: 'tcg', imagePath: localImages(dir) },
      tickMs: 0,
      onPass: () => ++passes === 2000 && enough(),
    });
    const running = agent.run(ac.signal);
    await reached;
    assert.ok(getEventListeners(ac.signal, 'abort').length < 10, `${getEventListeners(ac.signal, 'abort').length} listeners on the run signal`);
    ac.abort();
    await running;
  } finally {
    ac.abort();
    cache.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('with no periodic tick, changes that arrive while a pass or a status report is under way still reach the host and the server', async () => {
  const { t, url, stop } = await serve();
  const dir = mkdtempSync(join(tmpdir(), 'crowd-agent-'));
  writeFileSync(join(dir, 'debian.qcow2'), '');
  const cache = new AgentCache(join(dir, 'cache.db'));
  const ac = new AbortController();
  try {
    const credential = await t.enrol('host-4', { cpus: 64, memoryMiB: 65536, diskGiB: 50 });
    const agent = new Agent({
      node: 'host-4',
      client: () => new Client({ baseUrl: url, authorization: credential }),
      // Slow starts keep each pass busy while the next VMs arrive.
      driver: new FakeDriver({ startLatencyMs: 20 }),
      cache,
      clock: systemClock,
      logger: silentLogger(),
      host: { accel: 'tcg', imagePath: localImages(dir) },
      tickMs: 3600_000,
    });
    const running = agent.run(ac.signal);
    const names = Array.from({ length: 20 }, (_, i) => `burst-${i}`);
    for (const name of names) await t.store.create({ kind: 'vm', name, spec: { image: 'debian', machineType: 'small' } }, by);
    for (const name of names) await objectWhen(t.store, { kind: 'vm', name: name }, (v) => v.status.phase === 'running');
    ac.abort();
    await running;
  } finally {
    ac.abort();
    cache.close();
    await stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('NICs added to and removed from a running VM are hot-plugged in order with its host network; a guest that keeps a NIC gets NicsPending until its next start', async () => {
  const t: TestApp = await buildTestApp({ nodes: true, plugins: [hostNetworkRoutes((): Store => t.store)] });
  await t.seed();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  const dir = mkdtempSync(join(tmpdir(), 'crowd-agent-'));
  writeFileSync(join(dir, 'debian.qcow2'), '');
  const cache = new AgentCache(join(dir, 'cache.db'));
  const ac = new AbortController();
  // One timeline of host-network applies (the taps they leave) and NICs the guest took or released.
  const events: string[] = [];
  class RecordingDriver extends FakeDriver {
    override async attachNic(id: string, nic: NicConfig) {
      events.push(`attach ${nic.tap}`);
      return super.attachNic(id, nic);
    }
    override async detachNic(id: string, nic: NicConfig, opts?: { timeoutMs?: number }) {
      const info = await super.detachNic(id, nic, opts);
      events.push(`released ${nic.tap}`);
      return info;
    }
  }
  const driver = new RecordingDriver({ refusesUnplug: (c) => c.name === 'stubborn' });
  try {
    void new Scheduler({ store: t.store, logger: silentLogger(), clock: systemClock }).run(ac.signal);
    void new IpamController({ store: t.store, logger: silentLogger(), clock: systemClock }).run(ac.signal);
    const credential = await t.enrol('host-5', { cpus: 8, memoryMiB: 8192, diskGiB: 50 });
    const client = () => new Client({ baseUrl: url, authorization: credential });
    const network = new HostNetworkSync({
      options: { dnsmasqRunDir: join(dir, 'dnsmasq') },
      fetchView: () => client().http.json({ method: 'GET', path: '/v1/nodes/host-5/network' }),
      apply: async (spec) => void events.push(`apply ${spec.links.flatMap((l) => l.ports.map((p) => p.name)).join(',')}`),
      clock: systemClock,
      logger: silentLogger(),
      refreshMs: 50,
    });
    const running = testAgent({ node: 'host-5', url, authorization: credential, driver, cache, imageDir: dir }, { network, unplugTimeoutMs: 50 }).run(ac.signal);
    const nicsOf = async (id: string) => (await driver.inspect(id)).nics ?? [];
    const until = async (what: string, check: () => Promise<boolean>) => {
      const deadline = Date.now() + 10_000;
      while (!(await check())) {
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${events.join(' | ')}`);
        await new Promise((r) => setImmediate(r));
      }
    };

    await t.store.create({ kind: 'vm', name: 'web', spec: { image: 'debian', machineType: 'small' } }, by);
    const web = await objectWhen(t.store, { kind: 'vm', name: 'web' }, (v) => v.status.phase === 'running');
    const pid = (await driver.inspect(web.id)).pid;
    const tap = tapName(web.id, 0);
    await t.store.update({ kind: 'vm', idOrName: 'web' }, { labels: {}, metadata: {}, spec: { ...web.spec, nics: [{ network: 'lan' }] } }, by);
    await until('the NIC to be hot-plugged', async () => (await nicsOf(web.id)).length === 1);
    const addressed = await t.store.get({ kind: 'vm', idOrName: 'web' });
    assert.deepEqual(await nicsOf(web.id), [{ tap, mac: (addressed.status as VmStatus).addresses![0]!.mac }], 'the MAC the server assigned');
    assert.equal((await driver.inspect(web.id)).pid, pid, 'no restart');
    const plugged = events.indexOf(`attach ${tap}`);
    assert.ok(events.slice(0, plugged).some((e) => e.startsWith('apply') && e.includes(tap)), `the tap exists before the guest gets the NIC: ${events.join(' | ')}`);

    await t.store.update({ kind: 'vm', idOrName: 'web' }, { labels: {}, metadata: {}, spec: { ...web.spec, nics: [] } }, by);
    await until('the NIC to be unplugged', async () => (await nicsOf(web.id)).length === 0);
    await until('the tap to go', async () => events.at(-1) === 'apply ');
    const released = events.indexOf(`released ${tap}`);
    const tapGone = events.findIndex((e, i) => i > plugged && e.startsWith('apply') && !e.includes(tap));
    assert.ok(released >= 0 && released < tapGone, `the tap goes only after the guest released the NIC: ${events.join(' | ')}`);
    assert.equal((await driver.inspect(web.id)).pid, pid, 'no restart');

    // A NIC on a network that does not exist is refused by the API; nothing reaches the host.
    const before = events.length;
    await assert.rejects(t.store.update({ kind: 'vm', idOrName: 'web' }, { labels: {}, metadata: {}, spec: { ...web.spec, nics: [{ network: 'nope' }] } }, by), (e) => e instanceof ApiError);
    assert.ok(events.slice(before).every((e) => !e.startsWith('attach')));

    // A second NIC on a network whose pool ran dry waits, said so in NicsPending; the first stays plugged in and connected.
    await t.store.create({ kind: 'network', name: 'full', spec: { ipv4: { subnet: '10.81.0.0/30' } } }, by);
    await t.store.update({ kind: 'vm', idOrName: 'web' }, { labels: {}, metadata: {}, spec: { ...web.spec, nics: [{ network: 'full' }] } }, by);
    await until('the NIC on "full" to be hot-plugged', async () => (await nicsOf(web.id)).length === 1);
    await t.store.update({ kind: 'vm', idOrName: 'web' }, { labels: {}, metadata: {}, spec: { ...web.spec, nics: [{ network: 'full' }, { network: 'full' }] } }, by);
    const dry = await objectWhen(t.store, { kind: 'vm', name: 'web' }, (v) => (v.status as VmStatus).conditions?.some((c) => c.type === 'NicsPending' && /exhausted/.test(c.message ?? '')) ?? false);
    const waiting = (dry.status as VmStatus).conditions!.find((c) => c.type === 'NicsPending')!;
    assert.deepEqual([waiting.status, waiting.reason], ['true', 'WaitingForNetwork']);
    assert.deepEqual((await nicsOf(web.id)).map((n) => n.tap), [tap]);
    assert.ok(events.at(-1)!.includes(tap), `the first NIC's tap stays: ${events.join(' | ')}`);
    assert.equal((await driver.inspect(web.id)).pid, pid, 'no restart');

    await t.store.create({ kind: 'vm', name: 'stubborn', spec: { image: 'debian', machineType: 'small', nics: [{ network: 'lan' }] } }, by);
    const stubborn = await objectWhen(t.store, { kind: 'vm', name: 'stubborn' }, (v) => v.status.phase === 'running');
    assert.equal((await nicsOf(stubborn.id)).length, 1);
    await t.store.update({ kind: 'vm', idOrName: 'stubborn' }, { labels: {}, metadata: {}, spec: { ...stubborn.spec, nics: [] } }, by);
    const pending = await objectWhen(t.store, { kind: 'vm', name: 'stubborn' }, (v) => (v.status as VmStatus).conditions?.some((c) => c.type === 'NicsPending' && c.reason === 'RestartRequired') ?? false);
    const condition = (pending.status as VmStatus).conditions!.find((c) => c.type === 'NicsPending')!;
    assert.equal(condition.status, 'true');
    assert.match(condition.message!, /did not release it within 50 ms.*applies at the next start/);
    assert.equal((pending.status as VmStatus).phase, 'running');
    assert.equal((await nicsOf(stubborn.id)).length, 1, 'the guest still holds it');
    // The next start applies the change and clears the condition.
    await t.store.update({ kind: 'vm', idOrName: 'stubborn' }, { labels: {}, metadata: {}, spec: { ...stubborn.spec, nics: [], power: 'stopped' } }, by);
    await objectWhen(t.store, { kind: 'vm', name: 'stubborn' }, (v) => v.status.phase === 'stopped');
    await t.store.update({ kind: 'vm', idOrName: 'stubborn' }, { labels: {}, metadata: {}, spec: { ...stubborn.spec, nics: [], power: 'running' } }, by);
    const restarted = await objectWhen(t.store, { kind: 'vm', name: 'stubborn' }, (v) => v.status.phase === 'running');
    assert.equal((restarted.status as VmStatus).conditions?.find((c) => c.type === 'NicsPending')?.status, 'false');
    assert.deepEqual(await nicsOf(stubborn.id), []);
    ac.abort();
    await running;
  } finally {
    ac.abort();
    cache.close();
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
