import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import WebSocket from 'ws';
import { buildTestApp, testToken, type TestApp } from '../server/test-app.ts';
import { runCaptured, type RunOptions } from './captured-io.ts';
import { runCli } from './main.ts';

let t: TestApp;
let env: Record<string, string>;
let agent: WebSocket;
/** What the fake agent was asked, in order. */
const seen: { op: string; vm?: string; data?: string }[] = [];
/** Emits each op the fake agent receives. */
const heard = new EventEmitter();
let guestWrote: Buffer | undefined = Buffer.from('from the guest\n');
const by = { author: 'test' };

/** A stand-in agent on the tunnel: answers every request, echoes console input and says when a console ends. */
function serveFakeAgent(ws: WebSocket): void {
  ws.on('message', (raw: Buffer, isBinary) => {
    if (isBinary) {
      const id = raw.readUInt32BE(0);
      const echo = Buffer.alloc(raw.length);
      echo.writeUInt32BE(id, 0);
      echo.write(raw.subarray(4).toString().toUpperCase(), 4);
      return ws.send(echo);
    }
    const f = JSON.parse(raw.toString()) as { id: number; op: string; vm?: string; data?: string };
    seen.push({ op: f.op, ...(f.vm ? { vm: f.vm } : {}), ...(f.data ? { data: f.data } : {}) });
    heard.emit(f.op);
    if (f.op === 'end') return;
    const reply = (extra: object = {}) => ws.send(JSON.stringify({ id: f.id, op: 'reply', ...extra }));
    if (f.op === 'console.log') return reply({ data: Buffer.from('CROWD-GUEST-UP\r\n').toString('base64') });
    if (f.op === 'pipe.read') {
      const data = guestWrote;
      guestWrote = undefined;
      return reply(data ? { data: data.toString('base64') } : {});
    }
    reply();
    if (f.op === 'console.attach') {
      const hello = Buffer.alloc(4 + 6);
      hello.writeUInt32BE(f.id, 0);
      hello.write('login:', 4);
      ws.send(hello);
    }
  });
}

before(async () => {
  t = await buildTestApp({ nodes: true });
  await t.seed();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  env = { CROWD_URL: url, CROWD_TOKEN: testToken, CROWD_CONFIG: '/nonexistent/crowd-config.yaml' };
  const { token } = await t.enrolment!.createJoinToken({}, 'admin');
  const { credential } = await t.enrolment!.enrol({ joinToken: token, name: 'host-c', arch: 'x86_64', capacity: { cpus: 4, memoryMiB: 4096, diskGiB: 50 }, accel: 'tcg' });
  for (const [name, node] of [
    ['web', 'host-c'],
    ['far', 'host-gone'],
  ]) {
    const vm = await t.store.create({ kind: 'vm', name: name!, spec: { image: 'debian', machineType: 'small' } }, by);
    await t.store.updateStatus({ kind: 'vm', idOrName: vm.id }, { phase: 'running', node }, by);
  }
  agent = new WebSocket(`${url.replace('http', 'ws')}/v1/nodes/host-c/tunnel`, { headers: { authorization: `Bearer ${credential}` } });
  await new Promise((resolve, reject) => agent.once('open', resolve).once('error', reject));
  serveFakeAgent(agent);
});
after(async () => {
  agent.close();
  await t.close();
});

const crowd = (argv: string[], opts: RunOptions = {}) => runCaptured(argv, { env, ...opts });

async function ok(argv: string[], opts: RunOptions = {}): Promise<{ stdout: string; stderr: string }> {
  const r = await crowd(argv, opts);
  assert.equal(r.code, 0, `crowd ${argv.join(' ')} failed: ${r.stderr}`);
  return r;
}

test('vm stop and start set spec.power; reboot and reset say which node accepted them', async () => {
  assert.match((await ok(['vm', 'stop', 'web'])).stdout, /^vm "web" power set to stopped \(revision \d+\)\n$/);
  assert.match((await ok(['vm', 'start', 'web'])).stdout, /^vm "web" power set to running/);
  const id = (await t.store.get({ kind: 'vm', idOrName: 'web' })).id;
  seen.length = 0;
  assert.equal((await ok(['vm', 'reboot', 'web'])).stdout, 'Reboot of vm "web" accepted by node "host-c"\n');
  assert.equal((await ok(['vm', 'reset', 'web'])).stdout, 'Reset of vm "web" accepted by node "host-c"\n');
  assert.deepEqual(seen, [
    { op: 'reboot', vm: id },
    { op: 'reset', vm: id },
  ]);
});

test('vm console --log prints the console log', async () => {
  assert.equal((await ok(['vm', 'console', 'web', '--log'])).stdout, 'CROWD-GUEST-UP\r\n');
});

test('vm console is interactive: typing reaches the guest, its output is printed, Ctrl-] detaches', async () => {
  const stdin = new PassThrough();
  let stdout = '';
  let stderr = '';
  let onOut: (() => void) | undefined;
  const code = runCli(['vm', 'console', 'web'], {
    env,
    stdin,
    stdout: {
      write: (s: string) => {
        stdout += s;
        onOut?.();
      },
    },
    stderr: { write: (s: string) => (stderr += s) },
  });
  const printed = (text: string) =>
    new Promise<void>((resolve) => {
      onOut = () => stdout.includes(text) && resolve();
      onOut();
    });
  const greeted = printed('login:');
  await greeted;
  const echoed = printed('ROOT');
  stdin.write('root\n');
  await echoed;
  const released = once(heard, 'end');
  stdin.write(Buffer.from([0x61, 0x1d, 0x62]));
  assert.equal(await code, 0, stderr);
  assert.match(stderr, /Connected to the console of vm "web"\. Detach with Ctrl-\] \./);
  assert.match(stderr, /Detached from the console of vm "web"\./);
  // The host's console was released; nothing typed after Ctrl-] was sent.
  await released;
  assert.ok(!stdout.includes('B'));
});

test('vm console ends at the end of stdin, after sending it', async () => {
  const r = await ok(['vm', 'console', 'web'], { stdin: 'echo me' });
  assert.match(r.stderr, /Detached/);
});

test('vm pipe write sends an argument or stdin; pipe read prints once, then nothing', async () => {
  const id = (await t.store.get({ kind: 'vm', idOrName: 'web' })).id;
  seen.length = 0;
  assert.match((await ok(['vm', 'pipe', 'write', 'web', 'hello'])).stderr, /Queued 5 bytes for vm "web"/);
  await ok(['vm', 'pipe', 'write', 'web', '-'], { stdin: 'from stdin' });
  await ok(['vm', 'pipe', 'write', 'web'], { stdin: 'implicit' });
  assert.deepEqual(
    seen.filter((s) => s.op === 'pipe.write').map((s) => [s.op, s.vm, Buffer.from(s.data ?? '', 'base64').toString()]),
    [
      ['pipe.write', id, 'hello'],
      ['pipe.write', id, 'from stdin'],
      ['pipe.write', id, 'implicit'],
    ],
  );
  assert.equal((await ok(['vm', 'pipe', 'read', 'web'])).stdout, 'from the guest\n');
  assert.equal((await ok(['vm', 'pipe', 'read', 'web'])).stdout, '');
  guestWrote = Buffer.from([0xff, 0x00]);
  assert.equal((await ok(['vm', 'pipe', 'read', 'web', '--base64'])).stdout, '/wA=\n');
});

test('actions on a VM whose node is away, an unknown VM or an oversized pipe write fail with clear errors', async () => {
  const away = await crowd(['vm', 'reboot', 'far']);
  assert.equal(away.code, 1);
  assert.match(away.stderr, /Cannot reboot vm "far": the agent of node "host-gone" is not connected/);
  const console = await crowd(['vm', 'console', 'far'], { stdin: '' });
  assert.equal(console.code, 1);
  assert.match(console.stderr, /Cannot attach to the console of vm "far": the agent of node "host-gone" is not connected/);
  const unknown = await crowd(['vm', 'console', 'nope', '--log']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /nope/);
  const big = await crowd(['vm', 'pipe', 'write', 'web', '-'], { stdin: 'x'.repeat(64 * 1024 + 1) });
  assert.equal(big.code, 1);
  assert.match(big.stderr, /one write holds at most 65536 bytes/);
});
