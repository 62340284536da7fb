import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { runCaptured } from './captured-io.ts';

test('vm console against a server nobody listens on says it cannot reach the server', async () => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  const env = { CROWD_URL: `http://127.0.0.1:${port}`, CROWD_TOKEN: 'x', CROWD_CONFIG: '/nonexistent/crowd-config.yaml' };
  const r = await runCaptured(['vm', 'console', 'web'], { env, stdin: '' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`Cannot reach server "127\\.0\\.0\\.1:${port}": .*ECONNREFUSED`));
});
