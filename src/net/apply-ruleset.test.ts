import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeRunner } from '../base/runner.ts';
import { RulesetApplier, applyRuleset } from './apply-ruleset.ts';
import { buildRuleset, renderRuleset, type RulesetOptions } from './nft-ruleset.ts';

const host = (port: string): RulesetOptions => ({
  networks: [{ bridge: 'b' }],
  nics: [{ tap: 't1', bridge: 'b', mac: '52:54:00:00:00:01', ipv4: ['10.0.0.2'], ipv6: [], firewallKey: 'web', rules: [{ direction: 'ingress', action: 'accept', protocol: 'tcp', ports: [port] }] }],
});

test('a ruleset is applied in one nft transaction from standard input', async () => {
  const fake = new FakeRunner();
  await applyRuleset(fake, 'table inet crowd {}\n');
  assert.deepEqual(fake.calls, [{ argv: ['nft', '-f', '-'], input: 'table inet crowd {}\n' }]);
});

test('the first apply replaces the tables, a change goes as a delta, an unchanged reapply replaces them again', async () => {
  const fake = new FakeRunner();
  const applier = new RulesetApplier();
  assert.equal(await applier.apply(fake, buildRuleset(host('22'))), 'full');
  assert.equal(await applier.apply(fake, buildRuleset(host('2222'))), 'delta');
  assert.equal(await applier.apply(fake, buildRuleset(host('2222'))), 'full');
  const inputs = fake.calls.map((c) => c.input!);
  assert.equal(inputs[0], renderRuleset(host('22')));
  assert.match(inputs[1]!, /^flush chain inet crowd in_\w+\n(add rule .*\n)+$/);
  assert.equal(inputs[2], renderRuleset(host('2222')));
});

test('a failed delta falls back to replacing the tables, and a failed replace keeps the last good state', async () => {
  const fake = new FakeRunner().on((argv) => argv[0] === 'nft' && fake.calls.length === 2, { code: 1, stderr: 'Error: No such file or directory' });
  const applier = new RulesetApplier();
  await applier.apply(fake, buildRuleset(host('22')));
  assert.equal(await applier.apply(fake, buildRuleset(host('80'))), 'full');
  assert.equal(fake.calls[2]!.input, renderRuleset(host('80')));
  const broken = new FakeRunner().on('nft', { code: 1, stderr: 'Error: busy' });
  await assert.rejects(applier.apply(broken, buildRuleset(host('443'))), /"nft -f -" failed with exit code 1: Error: busy/);
  assert.equal(await applier.apply(fake, buildRuleset(host('443'))), 'delta', 'the kernel still holds port 80, so a delta from it works');
});
