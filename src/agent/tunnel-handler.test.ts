import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { silentLogger } from '../base/logger.ts';
import type { VmConfig } from './drivers/driver.ts';
import { FakeDriver } from './drivers/fake-driver.ts';
import { MetadataService } from '../metadata/metadata-service.ts';
import { SecretStore } from './secret-store.ts';
import { TunnelHandler } from './tunnel-handler.ts';
import { VmLocks } from './vm-locks.ts';

const config: VmConfig = { id: 'vm_1', name: 'web', cpus: 1, memoryMiB: 256, image: { path: '/images/debian.qcow2', format: 'qcow2' }, diskGiB: 1, accel: 'tcg' };

/** A handler over a fake driver with one running VM; `replies` emits every text frame it sends. */
async function setup() {
  const driver = new FakeDriver();
  await driver.start(config);
  const locks = new VmLocks();
  const replies = new EventEmitter();
  const handler = new TunnelHandler(
    { driver, pipes: new MetadataService({ identify: () => undefined, pipeCapBytes: 8 }), secrets: new SecretStore(), locks, logger: silentLogger() },
    { text: (f) => replies.emit('text', f), binary: (f, done) => (replies.emit('binary', f), done?.()) },
  );
  const ask = async (frame: object) => {
    const reply = once(replies, 'text');
    handler.receive(Buffer.from(JSON.stringify(frame)), false);
    return (await reply)[0] as { id: number; op: string; data?: string; error?: { code: string; message: string } };
  };
  return { driver, locks, handler, ask, replies };
}

test('malformed or unknown frames from the server are dropped without an answer', async () => {
  const { handler, replies, ask } = await setup();
  let answered = 0;
  replies.on('text', () => answered++);
  for (const bad of ['{', 'null', '[]', JSON.stringify({ id: 0, op: 'reboot', vm: 'vm_1' }), JSON.stringify({ id: 1, op: 'format-disk', vm: 'vm_1' }), JSON.stringify({ id: 2, op: 'reset' })])
    handler.receive(Buffer.from(bad), false);
  handler.receive(Buffer.from([0, 0]), true);
  handler.receive(Buffer.from([0, 0, 0, 9, 65]), true);
  assert.deepEqual(await ask({ id: 3, op: 'pipe.read', vm: 'vm_1' }), { id: 3, op: 'reply' });
  assert.equal(answered, 1);
});

test('an action on a VM with a driver call in flight is a conflict; unknown VMs are not_found', async () => {
  const { locks, ask } = await setup();
  let release!: () => void;
  const held = locks.tryRun('vm_1', () => new Promise<void>((r) => (release = r)));
  const busy = await ask({ id: 1, op: 'reboot', vm: 'vm_1' });
  assert.deepEqual(busy.error, { code: 'conflict', message: 'Cannot reboot vm "web": another operation on it is in progress' });
  release();
  await held;
  assert.deepEqual(await ask({ id: 2, op: 'reset', vm: 'vm_1' }), { id: 2, op: 'reply' });
  assert.equal((await ask({ id: 3, op: 'console.log', vm: 'vm_nope' })).error?.code, 'not_found');
  assert.equal((await ask({ id: 4, op: 'pipe.write', vm: 'vm_nope', data: 'aGk=' })).error?.code, 'not_found');
});

test('a pipe write past the cap fails whole with too_large', async () => {
  const { ask } = await setup();
  const over = await ask({ id: 1, op: 'pipe.write', vm: 'vm_1', data: Buffer.alloc(9).toString('base64') });
  assert.equal(over.error?.code, 'too_large');
  assert.deepEqual(await ask({ id: 2, op: 'pipe.write', vm: 'vm_1', data: Buffer.alloc(8).toString('base64') }), { id: 2, op: 'reply' });
});
