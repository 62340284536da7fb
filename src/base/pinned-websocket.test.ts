import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { certFingerprint, ensureSelfSignedCert } from '../server/tls.ts';
import { PinMismatchError } from './pinned-fetch.ts';
import { openWebSocket, UpgradeRefusedError, webSocketUrl } from './pinned-websocket.ts';
import { missingTools } from './require-tool.ts';
import { ExecRunner } from './runner.ts';

test('webSocketUrl maps http to ws and https to wss', () => {
  assert.equal(webSocketUrl('http://127.0.0.1:7470/', '/v1/nodes/a/tunnel'), 'ws://127.0.0.1:7470/v1/nodes/a/tunnel');
  assert.equal(webSocketUrl('https://[::1]:7470', '/v1/x'), 'wss://[::1]:7470/v1/x');
});

test('over wss the pinned certificate is checked before the credential is sent', { skip: missingTools('openssl') }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-wss-'));
  const https = createServer(await ensureSelfSignedCert(new ExecRunner(), dir, ['127.0.0.1']));
  const wss = new WebSocketServer({ server: https });
  const headers: (string | undefined)[] = [];
  wss.on('connection', (_ws, req) => headers.push(req.headers.authorization));
  try {
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    const url = `wss://127.0.0.1:${(https.address() as AddressInfo).port}/v1/nodes/a/tunnel`;
    const { cert } = await ensureSelfSignedCert(new ExecRunner(), dir, ['127.0.0.1']);
    await assert.rejects(openWebSocket(url, { authorization: 'Bearer secret', fingerprint: `sha256:${'0'.repeat(64)}` }), PinMismatchError);
    assert.deepEqual(headers, []);
    const ws = await openWebSocket(url, { authorization: 'Bearer secret', fingerprint: certFingerprint(cert) });
    assert.deepEqual(headers, ['Bearer secret']);
    ws.resume();
    ws.close();
    await once(ws, 'close');
  } finally {
    for (const c of wss.clients) c.terminate();
    wss.close();
    https.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a refused upgrade rejects with its HTTP status and parsed JSON body', async () => {
  const body = JSON.stringify({ error: { code: 'unauthenticated', message: 'Cannot open the tunnel: credential revoked' } });
  const http = createHttpServer();
  http.on('upgrade', (_req, socket) =>
    socket.end(`HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`),
  );
  try {
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/v1/nodes/a/tunnel`;
    await assert.rejects(openWebSocket(url, { authorization: 'Bearer x' }), (e: unknown) => {
      assert.ok(e instanceof UpgradeRefusedError);
      assert.equal(e.status, 401);
      assert.deepEqual(e.body, JSON.parse(body));
      return true;
    });
  } finally {
    http.close();
  }
});
