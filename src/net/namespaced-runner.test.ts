import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeRunner } from '../base/runner.ts';
import { NamespacedRunner } from './namespaced-runner.ts';

test('commands are prefixed with ip netns exec and keep their input', async () => {
  const fake = new FakeRunner();
  await new NamespacedRunner(fake, 'host-a').run({ argv: ['nft', '-f', '-'], input: 'x' });
  assert.deepEqual(fake.calls, [{ argv: ['ip', 'netns', 'exec', 'host-a', 'nft', '-f', '-'], input: 'x' }]);
});

test('a namespace name with shell or path characters is refused', () => {
  assert.throws(() => new NamespacedRunner(new FakeRunner(), 'a b'), /Cannot use network namespace "a b"/);
  assert.throws(() => new NamespacedRunner(new FakeRunner(), '../x'), /not a plain name/);
});
