import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { PinMismatchError } from '../base/pinned-fetch.ts';
import { missingTools } from '../base/require-tool.ts';
import { ExecRunner } from '../base/runner.ts';
import { certFingerprint, ensureSelfSignedCert } from '../server/tls.ts';
import { openWebSocket, webSocketUrl } from './tunnel-socket.ts';

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
