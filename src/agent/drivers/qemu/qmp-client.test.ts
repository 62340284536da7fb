import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import readline from 'node:readline';
import { test } from 'node:test';
import { QmpClient, type QmpEvent } from './qmp-client.ts';

type Handler = (cmd: { execute: string; arguments?: unknown; id?: string }, sock: net.Socket) => void;

/** A QMP server speaking just enough of the protocol; `handle` answers each command after capabilities. */
async function fakeQemu(t: { after: (fn: () => Promise<void>) => void }, handle: Handler, greet = true) {
  const dir = await mkdtemp(join(tmpdir(), 'qmp-'));
  const path = join(dir, 'qmp.sock');
  const sockets: net.Socket[] = [];
  const server = net.createServer((sock) => {
    sockets.push(sock);
    sock.on('error', () => {});
    if (greet) sock.write('{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": ["oob"]}}\n');
    readline.createInterface({ input: sock }).on('line', (line) => {
      const cmd = JSON.parse(line);
      if (cmd.execute === 'qmp_capabilities') sock.write(JSON.stringify({ return: {}, id: cmd.id }) + '\n');
      else handle(cmd, sock);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });
  return path;
}

test('executes commands after the greeting and matches replies by id, in any order', async (t) => {
  const held: [string, net.Socket][] = [];
  const path = await fakeQemu(t, (cmd, sock) => {
    held.push([cmd.id!, sock]);
    if (held.length === 2) {
      for (const [id, s] of held.reverse()) s.write(JSON.stringify({ return: { id }, id }) + '\n');
    }
  });
  const q = await QmpClient.connect(path);
  t.after(() => q.close());
  const [a, b] = await Promise.all([q.execute<{ id: string }>('query-status'), q.execute<{ id: string }>('query-name')]);
  assert.notEqual(a.id, b.id);
});

test('rejects with QEMU\'s error description', async (t) => {
  const path = await fakeQemu(t, (cmd, sock) => sock.write(JSON.stringify({ error: { class: 'CommandNotFound', desc: 'The command nope has not been found' }, id: cmd.id }) + '\n'));
  const q = await QmpClient.connect(path);
  t.after(() => q.close());
  await assert.rejects(q.execute('nope'), /QMP error: The command nope has not been found/);
});

test('times out a command QEMU never answers, and the connection stays usable', async (t) => {
  const path = await fakeQemu(t, (cmd, sock) => cmd.execute !== 'slow' && sock.write(JSON.stringify({ return: 'ok', id: cmd.id }) + '\n'));
  const q = await QmpClient.connect(path);
  t.after(() => q.close());
  await assert.rejects(q.execute('slow', undefined, { timeoutMs: 50 }), /QMP command "slow" timed out after 50 ms/);
  assert.equal(await q.execute('fast'), 'ok');
});

test('delivers events and rejects pending commands when QEMU drops the socket', async (t) => {
  const path = await fakeQemu(t, (cmd, sock) => {
    if (cmd.execute === 'quit') {
      sock.write('{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}, "timestamp": {}}\n');
      sock.destroy();
    }
  });
  const q = await QmpClient.connect(path);
  const events: QmpEvent[] = [];
  q.on('event', (e: QmpEvent) => events.push(e));
  const closed = new Promise((resolve) => q.once('close', resolve));
  await assert.rejects(q.execute('quit'), /closed/);
  await closed;
  assert.deepEqual(events, [{ event: 'SHUTDOWN', data: { guest: false, reason: 'host-qmp-quit' } }]);
  await assert.rejects(q.execute('query-status'), /connection closed/);
});

test('fails to connect when no greeting comes within the timeout', async (t) => {
  const path = await fakeQemu(t, () => {}, false);
  await assert.rejects(QmpClient.connect(path, { timeoutMs: 50 }), /No QMP greeting .* within 50 ms/);
});

test('fails to connect when nothing listens on the socket', async () => {
  await assert.rejects(QmpClient.connect(join(tmpdir(), `no-such-qmp-${process.pid}.sock`)), /ENOENT/);
});
