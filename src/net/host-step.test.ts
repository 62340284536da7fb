import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeRunner } from '../base/runner.ts';
import { runHostSteps } from './host-step.ts';

test('a failing step undoes the earlier steps in reverse order', async () => {
  const fake = new FakeRunner().on('sysctl c', { code: 2, stderr: 'boom' });
  const steps = ['a', 'b', 'c'].map((n) => ({ argv: ['sysctl', n], undo: [['sysctl', `un${n}`]] }));
  await assert.rejects(runHostSteps(fake, steps), /sysctl c" failed with exit code 2: boom/);
  assert.deepEqual(fake.lines(), ['sysctl a', 'sysctl b', 'sysctl c', 'sysctl unb', 'sysctl una']);
});

test('successful steps leave no undo behind', async () => {
  const fake = new FakeRunner();
  await runHostSteps(fake, [{ argv: ['true'], undo: [['false']] }]);
  assert.deepEqual(fake.lines(), ['true']);
});

const link = (n: string) => ({ argv: ['ip', 'link', 'add', n, 'type', 'bridge'], undo: [['ip', 'link', 'del', n]] });

test('consecutive ip steps run as one ip -batch, other commands and unquotable words on their own', async () => {
  const fake = new FakeRunner();
  const alias = { argv: ['ip', 'link', 'set', 'dev', 'a', 'alias', 'two words'], undo: [] };
  await runHostSteps(fake, [link('a'), link('b'), { argv: ['bridge', 'fdb', 'append'], undo: [] }, link('c'), alias, link('d'), link('e')]);
  assert.deepEqual(fake.lines(), ['ip -batch -', 'bridge fdb append', 'ip link add c type bridge', 'ip link set dev a alias two words', 'ip -batch -']);
  assert.equal(fake.calls[0]!.input, 'link add a type bridge\nlink add b type bridge\n');
  assert.equal(fake.calls[4]!.input, 'link add d type bridge\nlink add e type bridge\n');
});

test('a batch failing at a line undoes exactly the lines before it and names the failed step', async () => {
  const fake = new FakeRunner().on('ip -batch', { code: 1, stderr: 'RTNETLINK answers: File exists\nCommand failed -:3' });
  await assert.rejects(runHostSteps(fake, ['a', 'b', 'c', 'd'].map(link)), /"ip link add c type bridge" failed with exit code 1: RTNETLINK answers: File exists \| Command failed -:3/);
  assert.deepEqual(fake.lines(), ['ip -batch -', 'ip link del b', 'ip link del a']);
});

test('a batch that dies without naming a line is undone whole and rerun step by step to report the failing one', async () => {
  const fake = new FakeRunner().on('ip -batch', { code: 255, stderr: 'Cannot find device "nosuch0"' }).on('ip link add b', { code: 2, stderr: 'no b' });
  await assert.rejects(runHostSteps(fake, ['a', 'b', 'c'].map(link)), /"ip link add b type bridge" failed with exit code 2: no b/);
  assert.deepEqual(fake.lines(), ['ip -batch -', 'ip link del c', 'ip link del b', 'ip link del a', 'ip link add a type bridge', 'ip link add b type bridge', 'ip link del a']);
});
