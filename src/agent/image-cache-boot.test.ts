import assert from 'node:assert/strict';
import { objectWhen } from '../store/object-when.ts';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { ensureBusyboxDisk, guestMarkers } from '../../test/guests/busybox-disk.ts';
import { systemClock } from '../base/clock.ts';
import { createLogger, silentLogger } from '../base/logger.ts';
import { missingRoot, missingTools } from '../base/require-tool.ts';
import { ExecRunner } from '../base/runner.ts';
import { Client } from '../client/client.ts';
import { ImageRepository } from '../server/images/image-repository.ts';
import { Scheduler } from '../server/scheduler/scheduler.ts';
import { buildTestApp, testToken } from '../server/test-app.ts';
import { Agent } from './agent.ts';
import { AgentCache } from './agent-cache.ts';
import { QemuDriver } from './drivers/qemu/qemu-driver.ts';
import { ImageCache } from './image-cache.ts';
import { contentOpener } from './image-pull.ts';

const skip = missingTools('qemu-system-x86_64', 'qemu-img', 'prlimit', 'mkfs.vfat', 'mcopy', 'syslinux', 'cpio') ?? missingRoot();
const by = { author: 'test' };

test('a VM boots from an image uploaded through the API and pulled by the agent, resuming a partial pull', { skip, timeout: 180_000 }, async (t) => {
  const root = mkdtempSync('/tmp/crowd-img-boot-');
  const disk = await ensureBusyboxDisk();
  const repo = new ImageRepository({ dataDir: join(root, 'server'), runner: new ExecRunner() });
  const app = await buildTestApp({ nodes: true, images: { repo } });
  await app.seed();
  await app.app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.app.server.address() as AddressInfo).port}`;
  const stop = new AbortController();
  const scheduling = new Scheduler({ store: app.store, logger: silentLogger(), clock: systemClock }).run(stop.signal);
  const driver = new QemuDriver({ runDir: join(root, 'vms') });
  const cache = new AgentCache(join(root, 'agent.db'));
  const logLines: string[] = [];
  const logger = createLogger({ destination: { write: (s: string) => void logLines.push(s) } });
  let images: ImageCache | undefined;
  let running: Promise<void> | undefined;
  let vmId: string | undefined;
  t.after(async () => {
    stop.abort();
    await running?.catch(() => undefined);
    if (vmId) await driver.destroy(vmId).catch(() => undefined);
    await driver.close();
    await images?.close();
    cache.close();
    await scheduling;
    await app.close();
    rmSync(root, { recursive: true, force: true });
  });

  // Upload through the API, streamed from disk.
  const admin = { authorization: `Bearer ${testToken}` };
  await app.store.create({ kind: 'image', name: 'busybox', spec: {} }, by);
  const begin = await fetch(`${url}/v1/images/busybox/uploads`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: '{}' });
  const session = (await begin.json()) as { id: string };
  const put = await fetch(`${url}/v1/images/busybox/uploads/${session.id}`, {
    method: 'PATCH',
    headers: { ...admin, 'content-type': 'application/octet-stream', 'upload-offset': '0' },
    body: Readable.toWeb(createReadStream(disk)) as ReadableStream<Uint8Array>,
    duplex: 'half',
  } as RequestInit);
  assert.equal(put.status, 200, await put.clone().text());
  const finished = await fetch(`${url}/v1/images/busybox/uploads/${session.id}/finish`, { method: 'POST', headers: admin });
  assert.equal(finished.status, 200, await finished.clone().text());
  const sha = ((await finished.json()) as { status: { sha256: string } }).status.sha256;

  // An earlier pull on this host stopped after 1 MiB.
  const blob = Buffer.from(await (await fetch(`${url}/v1/images/busybox/content`, { headers: admin })).arrayBuffer());
  assert.equal(createHash('sha256').update(blob).digest('hex'), sha);
  const cacheDir = join(root, 'agent-images');
  images = new ImageCache({ dir: cacheDir, open: contentOpener(() => ({ url, authorization: node })), clock: systemClock, logger });
  writeFileSync(join(images.blobDir, `${sha}.qcow2.partial`), blob.subarray(0, 1024 * 1024));

  const node = await app.enrol('host-boot', { cpus: 2, memoryMiB: 4096, diskGiB: 50 });
  const cached = images;
  const agent = new Agent({
    node: 'host-boot',
    client: () => new Client({ baseUrl: url, authorization: node }),
    driver,
    cache,
    clock: systemClock,
    logger: silentLogger(),
    host: { accel: 'tcg', imagePath: (img) => cached.lookup(img), onImageChange: (l) => cached.onChange(l) },
    tickMs: 200,
  });
  running = agent.run(stop.signal);
  const vm = await app.store.create({ kind: 'vm', name: 'booted', spec: { image: 'busybox', machineType: 'small' } }, by);
  vmId = vm.id;
  await objectWhen(app.store, { kind: 'vm', name: 'booted' }, (v) => v.status.phase === 'running', 60_000);
  const deadline = Date.now() + 90_000;
  while (!(await driver.consoleLog(vm.id)).includes(guestMarkers.ready)) {
    if (Date.now() > deadline) assert.fail(`no ${guestMarkers.ready} on the console: ${(await driver.consoleLog(vm.id)).slice(-2000)}`);
    await delay(200);
  }
  const pulled = logLines.map((l) => JSON.parse(l) as { msg: string; resumedFrom?: number }).find((l) => l.msg === 'image pulled');
  assert.equal(pulled?.resumedFrom, 1024 * 1024, 'the pull continued the partial file');
  assert.deepEqual(readFileSync(join(images.blobDir, `${sha}.qcow2`)), blob);
  assert.equal(existsSync(join(images.blobDir, `${sha}.qcow2.partial`)), false);
});
