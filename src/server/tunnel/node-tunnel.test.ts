import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { silentLogger } from '../../base/logger.ts';
import { NodeTunnel } from './node-tunnel.ts';

/** A NodeTunnel over a real loopback WebSocket, and the agent's end of it. */
async function pair(timeoutMs: number) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const accepted = once(wss, 'connection');
  const agent = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  const [server] = (await accepted) as [WebSocket];
  await once(agent, 'open');
  const tunnel = new NodeTunnel(server, { node: 'host-x', logger: silentLogger(), timeoutMs });
  return { tunnel, agent, close: () => new Promise((r) => (agent.terminate(), wss.close(r))) };
}

test('a request the agent never answers fails as unavailable after the timeout', async () => {
  const p = await pair(50);
  try {
    await assert.rejects(p.tunnel.request('reset', 'vm_1'), /Cannot reset on node "host-x": the agent did not answer within 50 ms/);
  } finally {
    await p.close();
  }
});

test('when the agent goes away, waiting requests fail and open consoles end', async () => {
  const p = await pair(10_000);
  try {
    p.agent.on('message', (raw: Buffer) => {
      const f = JSON.parse(raw.toString()) as { id: number; op: string };
      if (f.op === 'console.attach') p.agent.send(JSON.stringify({ id: f.id, op: 'reply' }));
    });
    const stream = await p.tunnel.openConsole('vm_1');
    const ended = once(stream, 'end');
    stream.resume();
    const waiting = p.tunnel.request('console.log', 'vm_1');
    p.agent.terminate();
    await assert.rejects(waiting, (e: { code: string }) => e.code === 'unavailable');
    await ended;
    await assert.rejects(p.tunnel.request('reboot', 'vm_1'), /Cannot reboot on node "host-x": the agent disconnected/);
  } finally {
    await p.close();
  }
});
