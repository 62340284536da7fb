import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { AnyObject, Condition } from '../../src/api/object.ts';
import { isVmProcess, readPid } from '../../src/agent/drivers/qemu/qemu-process.ts';
import { missingRoot, missingTools } from '../../src/base/require-tool.ts';
import { Client } from '../../src/client/client.ts';
import { ensureBusyboxDisk, guestMarkers } from '../guests/busybox-disk.ts';
import { crowd, killLeftoverQemus, objectWhen, seedAdminToken, startAgent, startServer, until, type CrowdProcess } from './crowd-processes.ts';

const skip = missingTools('qemu-system-x86_64', 'qemu-img', 'mkfs.vfat', 'mcopy', 'syslinux', 'cpio') ?? missingRoot();
const token = 'crowd_e2e-vm-lifecycle-admin';
const phase = (p: string) => (o: AnyObject) => o.status.phase === p;

/**
 * One real server, one real agent and real QEMU guests (TCG, one at a time),
 * driven through the `crowd` binary as a user would.
 */
test('a VM runs through the crowd binary on a real agent and QEMU, and survives agent and server restarts', { skip, timeout: 300_000 }, async (t) => {
  const root = await mkdtemp(`/tmp/crowd-e2e-${process.pid}-`);
  const serverDir = join(root, 'server');
  const agentDir = join(root, 'agent');
  const imageDir = join(root, 'images');
  const procs: CrowdProcess[] = [];
  t.after(async () => {
    for (const p of procs) await p.stop('SIGKILL');
    await killLeftoverQemus(agentDir);
    await rm(root, { recursive: true, force: true });
  });
  mkdirSync(serverDir);
  mkdirSync(imageDir);
  symlinkSync(await ensureBusyboxDisk(), join(imageDir, 'busybox.qcow2'));
  writeFileSync(join(imageDir, 'broken.qcow2'), 'this is not a disk image\n');
  seedAdminToken(serverDir, token);

  const server = await startServer(serverDir);
  procs.push(server.proc);
  const url = server.url;
  const port = Number(new URL(url).port);
  const client = new Client({ baseUrl: url, authorization: `Bearer ${token}` });
  const cli = async (...argv: string[]) => {
    const r = await crowd(url, token, argv, { VISUAL: '', EDITOR: '' });
    assert.equal(r.code, 0, `crowd ${argv.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  };
  /** `crowd vm edit NAME` with an "editor" that flips spec.power. */
  const setPower = async (name: string, power: 'running' | 'stopped') => {
    const from = power === 'running' ? 'stopped' : 'running';
    const editor = `sed -i -e 's/^  power: ${from}$/  power: ${power}/'`;
    const r = await crowd(url, token, ['vm', 'edit', name, '--reason', `power ${power}`], { VISUAL: editor, EDITOR: editor });
    assert.equal(r.code, 0, `crowd vm edit ${name} failed: ${r.stderr}`);
    assert.match(r.stdout, /edited/);
  };
  let agent: CrowdProcess;
  const runAgent = (extra: { server?: string; joinToken?: string } = {}) => {
    agent = startAgent({ dataDir: agentDir, imageDir, name: 'host-1', labels: ['e2e=yes'], ...extra });
    procs.push(agent);
  };
  const vmDir = (vm: AnyObject) => join(agentDir, 'vms', vm.id);
  const qemuPid = async (vm: AnyObject) => (await readPid(join(vmDir(vm), 'qemu.pid')))!;
  const running = (vm: AnyObject, pid: number) => isVmProcess(pid, join(vmDir(vm), 'qemu.pid'));
  const markers = (vm: AnyObject) => readFileSync(join(vmDir(vm), 'console.log'), 'utf8').split(guestMarkers.ready).length - 1;
  /** Waits for a heartbeat sent after `since`: proof the agent is connected and working. */
  const heartbeatAfter = (since: number) => objectWhen(client, 'node', 'host-1', (n) => Date.parse(String(n.status.lastSeen)) > since);

  await cli('machine-type', 'create', 'tiny', '--cpus', '1', '--memory', '192', '--disk', '1');
  await cli('machine-type', 'create', 'huge', '--cpus', '1', '--memory', '1TiB', '--disk', '1');
  await cli('image', 'create', 'busybox', '--arch', 'x86_64');
  await cli('image', 'create', 'broken', '--arch', 'x86_64');
  const joinToken = (await cli('node', 'join-token', '--ttl', '10m')).trim();
  runAgent({ server: url, joinToken });
  const node = await objectWhen(client, 'node', 'host-1', phase('ready'));
  assert.deepEqual(node.labels, { e2e: 'yes' });
  assert.equal(node.status.accel, 'tcg');

  let web!: AnyObject;
  let pid = 0;
  await t.test('a created VM reaches running and its serial log shows the guest', async () => {
    await cli('vm', 'create', 'web', '--image', 'busybox', '--machine-type', 'tiny', '--power', 'running');
    web = await objectWhen(client, 'vm', 'web', phase('running'));
    assert.equal(web.status.node, 'host-1');
    pid = await qemuPid(web);
    assert.ok(await running(web, pid));
    await until('the guest marker in the serial log', () => existsSync(join(vmDir(web), 'console.log')) && markers(web) === 1, 90_000);
    // The same log through the server and the agent's own connection.
    assert.match(await cli('vm', 'console', 'web', '--log'), new RegExp(guestMarkers.ready));
    const listed = await cli('vm', 'list');
    assert.match(listed, /^web\s+busybox\s+tiny\s+running\s+host-1\s+\d+$/m);
  });

  await t.test('a VM whose image QEMU cannot open goes failed with the error, and the agent keeps the other VM running', async () => {
    await cli('vm', 'create', 'broken', '--image', 'broken', '--machine-type', 'tiny');
    const broken = await objectWhen(client, 'vm', 'broken', phase('failed'));
    assert.match(String(broken.status.lastError), /not in qcow2 format/);
    const ready = (broken.status.conditions as Condition[]).find((c) => c.type === 'Ready');
    assert.equal(ready?.status, 'false');
    assert.ok(await running(web, pid), 'the other VM still runs');
    await heartbeatAfter(Date.now());
    await cli('vm', 'delete', 'broken');
    await until('the broken VM\'s files to go', () => !existsSync(vmDir(broken)));
  });

  await t.test('a VM no node can hold stays pending with the scheduler\'s reason', async () => {
    await cli('vm', 'create', 'giant', '--image', 'busybox', '--machine-type', 'huge');
    const giant = await objectWhen(client, 'vm', 'giant', (v) => (v.status.conditions as Condition[] | undefined)?.some((c) => c.type === 'Scheduled') === true);
    assert.equal(giant.status.phase, 'pending');
    assert.equal(giant.status.node, undefined);
    const cond = (giant.status.conditions as Condition[]).find((c) => c.type === 'Scheduled')!;
    assert.equal(cond.status, 'false');
    assert.match(String(cond.message), /0 of 1 nodes fit: .*memory/);
    await cli('vm', 'delete', 'giant');
  });

  await t.test('kill -9 of the agent leaves the VM running; the restarted agent re-adopts the same QEMU', async () => {
    await agent.stop('SIGKILL');
    assert.ok(await running(web, pid), 'QEMU outlives its agent');
    const restartedAt = Date.now();
    runAgent();
    await heartbeatAfter(restartedAt);
    const after = await objectWhen(client, 'vm', 'web', phase('running'));
    assert.equal(after.status.node, 'host-1');
    assert.equal(await qemuPid(web), pid, 'the same QEMU pid');
    assert.ok(await running(web, pid));
    assert.equal(markers(web), 1, 'the guest did not boot again');
  });

  await t.test('with the server stopped the VM keeps running and is restarted locally; after the server returns status converges and a spec change applies', async () => {
    await server.proc.stop('SIGTERM');
    assert.equal(server.proc.child.exitCode, 0, 'the server shut down cleanly');
    assert.ok(await running(web, pid), 'the VM runs on without the server');
    // A crash while cut off: the agent restarts it from its local cache (restart policy "always").
    process.kill(pid, 'SIGKILL');
    await until('the agent to restart the VM without the server', async () => {
      const now = await readPid(join(vmDir(web), 'qemu.pid'));
      return now !== undefined && now !== pid && (await running(web, now));
    }, 60_000);
    const restartedPid = await qemuPid(web);
    // Its power button works once the guest is up; a stop sent earlier would be forced after the timeout.
    await until('the restarted guest to boot', () => markers(web) === 2, 90_000);

    const back = await startServer(serverDir, port);
    procs.push(back.proc);
    const returnedAt = Date.now();
    await heartbeatAfter(returnedAt);
    const converged = await objectWhen(client, 'vm', 'web', phase('running'));
    assert.equal(converged.status.lastError, undefined);
    assert.equal(await qemuPid(web), restartedPid, 'no second copy after the reconnect');

    await setPower('web', 'stopped');
    await objectWhen(client, 'vm', 'web', phase('stopped'));
    await until('QEMU to exit', async () => !(await running(web, restartedPid)), 30_000);
    const exit = JSON.parse(readFileSync(join(vmDir(web), 'exit.json'), 'utf8')) as { kind: string };
    assert.equal(exit.kind, 'stopped', 'a graceful stop through the guest, on request');
  });

  await t.test('start boots it again, and delete removes the QEMU process and the VM\'s files', async () => {
    const before = markers(web);
    assert.match(await cli('vm', 'start', 'web'), /power set to running/);
    await objectWhen(client, 'vm', 'web', phase('running'));
    const newPid = await qemuPid(web);
    assert.ok(await running(web, newPid));
    await until('the guest marker after the start', () => markers(web) > before, 90_000);

    await cli('vm', 'delete', 'web');
    await until('QEMU to be gone', async () => !(await running(web, newPid)), 30_000);
    await until('the VM\'s files to be gone', () => !existsSync(vmDir(web)), 30_000);
    assert.match(await cli('vm', 'list'), /No objects found/);
  });
});
