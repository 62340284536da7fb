import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeRunner } from '../base/runner.ts';
import { runHostSteps } from './host-step.ts';

test('a failing step undoes the earlier steps in reverse order', async () => {
  const fake = new FakeRunner().on('ip link add c', { code: 2, stderr: 'boom' });
  const steps = ['a', 'b', 'c'].map((n) => ({ argv: ['ip', 'link', 'add', n], undo: [['ip', 'link', 'del', n]] }));
  await assert.rejects(runHostSteps(fake, steps), /ip link add c" failed with exit code 2: boom/);
  assert.deepEqual(fake.lines(), ['ip link add a', 'ip link add b', 'ip link add c', 'ip link del b', 'ip link del a']);
});

test('successful steps leave no undo behind', async () => {
  const fake = new FakeRunner();
  await runHostSteps(fake, [{ argv: ['true'], undo: [['false']] }]);
  assert.deepEqual(fake.lines(), ['true']);
});
