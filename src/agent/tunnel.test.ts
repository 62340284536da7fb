import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { AdminOnlyAuthorizer } from '../auth/authorizer.ts';
import { AuthChain } from '../auth/chain.ts';
import { NodeCredentialAuthenticator } from '../auth/node-credential.ts';
import { hashToken, StaticTokenAuthenticator } from '../auth/static-token.ts';
import { systemClock } from '../base/clock.ts';
import { silentLogger } from '../base/logger.ts';
import { buildApp } from '../server/app.ts';
import { nodeRoutes } from '../server/routes/nodes.ts';
import { Scheduler } from '../server/scheduler/scheduler.ts';
import { buildTestApp, testToken } from '../server/test-app.ts';
import { TunnelRegistry } from '../server/tunnel/tunnel-registry.ts';
import type { Store } from '../store/store.ts';
import { testAgent } from './test-agent.ts';
import { AgentCache } from './agent-cache.ts';
import type { VmInfo } from './drivers/driver.ts';
import { FakeDriver } from './drivers/fake-driver.ts';
import { MetadataService } from '../metadata/metadata-service.ts';
import { SecretStore } from './secret-store.ts';
import { AgentTunnel } from './tunnel.ts';

/** A fake driver that says when reboot and reset reach it. */
class RecordingDriver extends FakeDriver {
  readonly calls = new EventEmitter();
  override async reboot(id: string): Promise<VmInfo> {
    const info = await super.reboot(id);
    this.calls.emit('reboot', id);
    return info;
  }
  override async reset(id: string): Promise<VmInfo> {
    const info = await super.reset(id);
    this.calls.emit('reset', id);
    return info;
  }
}

/** Resolves once `pred` holds for the VM (checked on every change), or fails after 10 s. */
async function vmWhen(store: Store, name: string, pred: (phase: unknown) => boolean): Promise<void> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 10_000);
  try {
    const cur = await store.get({ kind: 'vm', idOrName: name });
    if (pred(cur.status.phase)) return;
    for await (const ev of store.watch({ kinds: ['vm'], fromRevision: cur.revision }, ac.signal)) if (ev.type === 'put' && ev.object.name === name && pred(ev.object.status.phase)) return;
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  const last = await store.get({ kind: 'vm', idOrName: name });
  assert.fail(`vm "${name}" never matched; its status: ${JSON.stringify(last.status)}`);
}

/** A server, one enrolled agent with the recording driver and its tunnel, and a running VM "web". */
async function setup(opts: { pipeCapBytes?: number } = {}) {
  const t = await buildTestApp({ nodes: true });
  await t.seed();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const port = (t.app.server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const dir = mkdtempSync(join(tmpdir(), 'crowd-tunnel-'));
  writeFileSync(join(dir, 'debian.qcow2'), '');
  const ac = new AbortController();
  const scheduling = new Scheduler({ store: t.store, logger: silentLogger(), clock: systemClock }).run(ac.signal);
  const { token } = await t.enrolment!.createJoinToken({}, 'admin');
  const { credential } = await t.enrolment!.enrol({ joinToken: token, name: 'host-t', arch: 'x86_64', capacity: { cpus: 4, memoryMiB: 4096, diskGiB: 50 }, accel: 'tcg' });
  const driver = new RecordingDriver();
  const cache = new AgentCache(join(dir, 'cache.db'));
  const agent = testAgent({ node: 'host-t', url: url, authorization: `Bearer ${credential}`, driver, cache, imageDir: dir });
  // A metadata service that serves no guest is exactly the agent's pipe source.
  const pipes = new MetadataService({ identify: () => undefined, ...(opts.pipeCapBytes ? { pipeCapBytes: opts.pipeCapBytes } : {}) });
  const connections = new EventEmitter();
  const tunnel = new AgentTunnel({
    server: url,
    node: 'host-t',
    authorization: () => `Bearer ${credential}`,
    driver,
    pipes,
    secrets: new SecretStore(),
    locks: agent.locks,
    clock: systemClock,
    logger: silentLogger(),
    random: () => 0,
    onConnected: () => connections.emit('up'),
  });
  const connected = once(connections, 'up');
  const running = Promise.all([agent.run(ac.signal), tunnel.run(ac.signal)]);
  await connected;
  await t.store.create({ kind: 'vm', name: 'web', spec: { image: 'debian', machineType: 'small' } }, { author: 'test' });
  await vmWhen(t.store, 'web', (p) => p === 'running');
  const vm = await t.store.get({ kind: 'vm', idOrName: 'web' });
  return {
    t,
    url,
    port,
    vm,
    driver,
    pipes,
    secrets: new SecretStore(),
    connections,
    stop: async () => {
      ac.abort();
      await running;
      await scheduling;
      cache.close();
      await t.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const admin = { authorization: `Bearer ${testToken}` };

function openConsole(url: string, vm: string): Promise<WebSocket> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/vms/${vm}/console`, { headers: admin });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** Collects a console's output until it contains `text`. */
function readUntil(ws: WebSocket, text: string): Promise<string> {
  let seen = '';
  return new Promise((resolve, reject) => {
    const onData = (data: Buffer) => {
      seen += data.toString();
      if (!seen.includes(text)) return;
      ws.off('message', onData);
      resolve(seen);
    };
    ws.on('message', onData);
    ws.once('close', () => reject(new Error(`console closed before "${text}"; saw ${JSON.stringify(seen)}`)));
  });
}

test('the console attaches over the tunnel both ways, detaches, and attaches again; its log comes back', async () => {
  const s = await setup();
  try {
    const log = await fetch(`${s.url}/v1/vms/web/console/log`, { headers: admin });
    assert.equal(log.status, 200);
    assert.match(log.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(await log.text(), /CROWD-GUEST-UP\r\nCROWD-GUEST-READY/);

    const first = await openConsole(s.url, 'web');
    const echoed = readUntil(first, 'hello\r\n');
    first.send('hello\n');
    await echoed;
    // Guest output that appears while attached (a reset reboots the guest, which prints its lines again).
    const booted = readUntil(first, 'CROWD-GUEST-READY');
    assert.equal((await fetch(`${s.url}/v1/vms/web/reset`, { method: 'POST', headers: admin })).status, 202);
    await booted;
    first.close();
    await once(first, 'close');
    // The agent released the console: a second attach works (the driver allows one at a time).
    let second: WebSocket | undefined;
    for (let i = 0; !second; i++) {
      second = await openConsole(s.url, 'web').catch((e: Error) => {
        if (i > 100 || !/409/.test(e.message)) throw e;
        return undefined;
      });
    }
    const again = readUntil(second, 'again\r\n');
    second.send(Buffer.from('again\n'));
    await again;
    second.close();
  } finally {
    await s.stop();
  }
});

test('reboot and reset reach the driver; a VM that is not running gets a clear conflict', async () => {
  const s = await setup();
  try {
    const rebooted = once(s.driver.calls, 'reboot');
    const r = await fetch(`${s.url}/v1/vms/web/reboot`, { method: 'POST', headers: admin });
    assert.equal(r.status, 202);
    assert.deepEqual(await r.json(), { action: 'reboot', vm: 'web', node: 'host-t' });
    assert.deepEqual(await rebooted, [s.vm.id]);
    const reset = once(s.driver.calls, 'reset');
    assert.equal((await fetch(`${s.url}/v1/vms/web/reset`, { method: 'POST', headers: admin })).status, 202);
    assert.deepEqual(await reset, [s.vm.id]);

    const stopped = await fetch(`${s.url}/v1/vms/web/stop`, { method: 'POST', headers: admin });
    assert.equal(((await stopped.json()) as { spec: { power: string } }).spec.power, 'stopped');
    await vmWhen(s.t.store, 'web', (p) => p === 'stopped');
    const refused = await fetch(`${s.url}/v1/vms/web/reboot`, { method: 'POST', headers: admin });
    assert.equal(refused.status, 409);
    assert.equal(((await refused.json()) as { error: { message: string } }).error.message, 'Cannot reboot vm "web": vm is not running');
    const noConsole = await openConsole(s.url, 'web').catch((e: Error) => e);
    assert.match(String(noConsole), /HTTP 409/);
  } finally {
    await s.stop();
  }
});

test('the pipe carries bytes both ways through the agent, once each, within its caps', async () => {
  const s = await setup({ pipeCapBytes: 16 });
  try {
    const write = (data: Buffer) => fetch(`${s.url}/v1/vms/web/pipe`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ data: data.toString('base64') }) });
    assert.equal((await write(Buffer.from('to guest'))).status, 204);
    assert.equal(s.pipes.pipe(s.vm.id).guestRead()?.toString(), 'to guest');
    const full = await write(Buffer.alloc(17));
    assert.equal(full.status, 413);
    assert.match(((await full.json()) as { error: { message: string } }).error.message, /Cannot write 17 bytes to the host-to-guest pipe/);

    const read = () => fetch(`${s.url}/v1/vms/web/pipe`, { headers: admin });
    assert.equal((await read()).status, 204);
    s.pipes.pipe(s.vm.id).guestWrite(Buffer.from([0, 1, 2, 255]));
    const got = await read();
    assert.equal(got.status, 200);
    assert.deepEqual(Buffer.from(((await got.json()) as { data: string }).data, 'base64'), Buffer.from([0, 1, 2, 255]));
    assert.equal((await read()).status, 204);
  } finally {
    await s.stop();
  }
});

test('after the server restarts, the agent reconnects its tunnel and actions work again', async () => {
  const s = await setup();
  let second: Awaited<ReturnType<typeof buildApp>> | undefined;
  try {
    const reconnected = once(s.connections, 'up');
    await s.t.app.close();
    const down = await fetch(`${s.url}/healthz`).catch((e: Error) => e);
    assert.ok(down instanceof Error, 'the first server is gone');
    second = await buildApp({
      store: s.t.store,
      auth: new AuthChain([
        new StaticTokenAuthenticator([{ name: 'admin', sha256: hashToken(testToken) }]),
        new NodeCredentialAuthenticator((id) => s.t.store.getCredential(id), systemClock),
      ]),
      authorizer: new AdminOnlyAuthorizer(),
      logger: silentLogger(),
      tunnels: new TunnelRegistry({ logger: silentLogger() }),
      plugins: [nodeRoutes(s.t.enrolment!)],
    });
    await second.listen({ host: '127.0.0.1', port: s.port });
    await reconnected;
    const log = await fetch(`${s.url}/v1/vms/web/console/log`, { headers: admin });
    assert.equal(log.status, 200);
    assert.match(await log.text(), /CROWD-GUEST-READY/);
  } finally {
    await s.stop();
    await second?.close();
  }
});
