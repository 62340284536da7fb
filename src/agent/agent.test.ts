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
