import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeRunner } from '../base/runner.ts';
import type { ProcessTable } from './dnsmasq-process.ts';
import { applyHostNetwork, type HostNetworkSpec } from './host-network.ts';

function setup(t: { after: (fn: () => void) => void }) {
  const runDir = mkdtempSync(join(tmpdir(), 'crowd-hostnet-'));
  t.after(() => rmSync(runDir, { recursive: true, force: true }));
  const runner = new FakeRunner()
    .on('ip -j -d', { stdout: '[]' })
    .on('tc -j', { stdout: '[]' })
    .on('sysctl -n', { stdout: '0\n' });
  const processes: ProcessTable = { cmdline: () => undefined, signal: () => {} };
  const spec: HostNetworkSpec = {
    links: [{ network: 'blue', bridge: 'crbr1', ports: [{ kind: 'tap', name: 'crtap1' }] }],
    ruleset: { networks: [{ bridge: 'crbr1' }], nics: [{ tap: 'crtap1', bridge: 'crbr1', mac: '52:54:00:00:00:01', ipv4: ['10.0.0.5'], ipv6: [], rules: [] }] },
    bandwidth: [{ tap: 'crtap1', ingressMbit: 10 }],
    dnsmasq: [{ network: 'blue', bridge: 'crbr1', runDir, ipv4: { subnet: '10.0.0.0/24' }, hosts: [], staticOnly: true }],
    dnsmasqRunDir: runDir,
  };
  return { runDir, runner, spec, deps: { runner, processes } };
}

test('the ruleset goes first, then links, bandwidth and dnsmasq; a network that left has its dnsmasq stopped', async (t) => {
  const { runner, spec, deps, runDir } = setup(t);
  writeFileSync(join(runDir, 'gone.conf'), '');
  const result = await applyHostNetwork(spec, deps);
  // Link steps run through `ip -batch -`, so look into each command's input too.
  const commands = runner.calls.map((c) => `${c.argv.join(' ')}\n${c.input ?? ''}`);
  const at = (text: string) => commands.findIndex((l) => l.includes(text));
  assert.ok(at('nft -f -') < at('tuntap add') && at('tuntap add') < at('tc qdisc replace') && at('tc qdisc replace') < at('dnsmasq --test'));
  assert.deepEqual(result.dnsmasq, { blue: 'started', gone: 'stopped' });
  assert.ok(result.linkChanges > 0 && result.tcChanges === 1);
});

test('bad input anywhere changes nothing on the host', async (t) => {
  const { runner, spec, deps } = setup(t);
  const bad: HostNetworkSpec[] = [
    { ...spec, bandwidth: [{ tap: 'crtap1', egressMbit: 0 }] },
    { ...spec, dnsmasq: [{ ...spec.dnsmasq[0]!, ipv4: { subnet: 'nope' } }] },
    { ...spec, links: [{ ...spec.links[0]!, mtu: 1 }] },
    { ...spec, ruleset: { ...spec.ruleset, nics: [{ ...spec.ruleset.nics[0]!, ipv4: ['x'] }] } },
  ];
  for (const b of bad) await assert.rejects(applyHostNetwork(b, deps), /Cannot/);
  const changes = runner.lines().filter((l) => !/^(ip -j|sysctl -n|tc -j|bridge -j)/.test(l));
  assert.deepEqual(changes, []);
});
