import assert from 'node:assert/strict';
import { objectWhen } from '../store/object-when.ts';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { systemClock } from '../base/clock.ts';
import { silentLogger } from '../base/logger.ts';
import { Client } from '../client/client.ts';
import { Scheduler } from '../server/scheduler/scheduler.ts';
import { buildTestApp } from '../server/test-app.ts';
import { Agent } from './agent.ts';
import { AgentCache } from './agent-cache.ts';
import { FakeDriver } from './drivers/fake-driver.ts';
import { ImageCache } from './image-cache.ts';

const by = { author: 'test' };

test('a VM waits in provisioning while its image is pulled, without holding up the others, then starts', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'crowd-pull-wait-'));
  const app = await buildTestApp({ nodes: true });
  await app.seed();
  await app.app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.app.server.address() as AddressInfo).port}`;
  const stop = new AbortController();
  const scheduling = new Scheduler({ store: app.store, logger: silentLogger(), clock: systemClock }).run(stop.signal);
  const bytes = randomBytes(64 * 1024);
  const sha = createHash('sha256').update(bytes).digest('hex');
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const images = new ImageCache({
    dir: join(root, 'images'),
    // The content answer is held until the test releases it: a pull that takes its time.
    open: async () => {
      await gate;
      return new Response(bytes, { status: 200, headers: { etag: `"${sha}"` } });
    },
    clock: systemClock,
    logger: silentLogger(),
  });
  const cache = new AgentCache(join(root, 'agent.db'));
  let running: Promise<void> | undefined;
  t.after(async () => {
    release();
    stop.abort();
    await running;
    await images.close();
    cache.close();
    await scheduling;
    await app.close();
    rmSync(root, { recursive: true, force: true });
  });
  await app.store.updateStatus({ kind: 'image', idOrName: 'debian' }, { phase: 'ready', format: 'qcow2', sha256: sha, sizeBytes: bytes.length }, by);
  await app.store.create({ kind: 'image', name: 'local', spec: {} }, by);
  const credential = await app.enrol('host-wait');
  const agent = new Agent({
    node: 'host-wait',
    client: () => new Client({ baseUrl: url, authorization: credential }),
    driver: new FakeDriver(),
    cache,
    clock: systemClock,
    logger: silentLogger(),
    host: {
      accel: 'tcg',
      imagePath: (img) => (img.name === 'local' ? { path: '/dev/null', format: 'raw' } : images.lookup(img)),
      onImageChange: (l) => images.onChange(l),
    },
  });
  running = agent.run(stop.signal);
  await app.store.create({ kind: 'vm', name: 'waits', spec: { image: 'debian', machineType: 'small' } }, by);
  await app.store.create({ kind: 'vm', name: 'other', spec: { image: 'local', machineType: 'small' } }, by);
  const waiting = await objectWhen(app.store, { kind: 'vm', name: 'waits' }, (v) => v.status.phase === 'provisioning');
  assert.equal(waiting.status.lastError, undefined);
  await objectWhen(app.store, { kind: 'vm', name: 'other' }, (v) => v.status.phase === 'running');
  assert.equal((await app.store.get({ kind: 'vm', idOrName: 'waits' })).status.phase, 'provisioning', 'still waiting while the pull is held');
  release();
  await objectWhen(app.store, { kind: 'vm', name: 'waits' }, (v) => v.status.phase === 'running');
});
