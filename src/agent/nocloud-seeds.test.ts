import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VmSpec } from '../api/kinds/vm.ts';
import type { AnyObject } from '../api/object.ts';
import { systemClock } from '../base/clock.ts';
import { silentLogger } from '../base/logger.ts';
import { missingTools } from '../base/require-tool.ts';
import { ExecRunner } from '../base/runner.ts';
import { Client } from '../client/client.ts';
import { renderNocloudSeed } from '../metadata/nocloud.ts';
import { Agent } from './agent.ts';
import { AgentCache } from './agent-cache.ts';
import { FakeDriver, FakeHost } from './drivers/fake-driver.ts';
import { localImages } from './local-images.ts';
import { guestInfo } from './metadata-guests.ts';
import { NocloudSeeds, wantsNocloudSeed } from './nocloud-seeds.ts';

const base: VmSpec = { image: 'debian', machineType: 'small' };

test('a VM gets a seed disk when it asks for one or has no NIC to reach the metadata service', () => {
  const cases: [string, VmSpec, boolean][] = [
    ['no NICs', base, true],
    ['an empty NIC list', { ...base, nics: [] }, true],
    ['no NICs, asked not to', { ...base, install: { mode: 'run', nocloud: false } }, true],
    ['a NIC', { ...base, nics: [{ network: 'lan' }] }, false],
    ['a NIC, not asking', { ...base, nics: [{ network: 'lan' }], install: { mode: 'run', nocloud: false } }, false],
    ['a NIC, asking', { ...base, nics: [{ network: 'lan' }], install: { mode: 'run', nocloud: true } }, true],
  ];
  for (const [name, spec, want] of cases) assert.equal(wantsNocloudSeed(spec), want, name);
});

const object = (o: Partial<AnyObject> & { kind: string; name: string }): AnyObject => ({ id: `${o.kind}_${o.name}`, project: '', spec: {}, status: {}, ...o }) as AnyObject;

test('the agent builds a cidata seed in the VM directory before the first start and hands its path to the driver; a networked VM gets none', { skip: missingTools('genisoimage', 'isoinfo') }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-seeds-'));
  const cache = new AgentCache(join(dir, 'cache.db'));
  try {
    writeFileSync(join(dir, 'debian.qcow2'), '');
    const offline = object({ kind: 'vm', id: 'vm_offline', name: 'offline', spec: { ...base, userData: '#cloud-config\n# offline\n', sshKeys: ['ssh-ed25519 AAAA a@b'] }, status: { node: 'h' } });
    const networked = object({ kind: 'vm', id: 'vm_net', name: 'net', spec: { ...base, nics: [{ network: 'lan' }] }, status: { node: 'h' } });
    for (const o of [object({ kind: 'machine-type', name: 'small', spec: { cpus: 1, memoryMiB: 256, diskGiB: 1 } }), object({ kind: 'image', name: 'debian' }), offline, networked]) cache.put(o);
    const fake = new FakeHost();
    const runner = new ExecRunner();
    const place = { region: 'crowd', availabilityZone: 'h' };
    const seeds = new NocloudSeeds({ runner, runDir: join(dir, 'vms'), place });
    const agent = new Agent({
      node: 'h',
      client: () => new Client({ baseUrl: 'http://127.0.0.1:9' }),
      driver: new FakeDriver({ host: fake }),
      cache,
      clock: systemClock,
      logger: silentLogger(),
      host: { accel: 'tcg', imagePath: localImages(dir) },
      nocloud: seeds,
    });
    await agent.pass();
    const iso = join(dir, 'vms', 'vm_offline', 'seed.iso');
    assert.deepEqual(fake.vms.get('vm_offline')?.config.seed, { path: iso });
    assert.ok(fake.vms.has('vm_net'), 'the networked VM started too');
    assert.equal(fake.vms.get('vm_net')?.config.seed, undefined);
    assert.equal(existsSync(join(dir, 'vms', 'vm_net')), false);
    assert.match((await runner.run({ argv: ['isoinfo', '-d', '-i', iso] })).stdout, /^Volume id: cidata$/m);
    const seed = renderNocloudSeed(guestInfo(offline, undefined, place));
    for (const name of ['user-data', 'meta-data', 'network-config'] as const) {
      const out = await runner.run({ argv: ['isoinfo', '-J', '-i', iso, '-x', `/${name}`] });
      assert.equal(out.stdout, seed[name], name);
    }
    assert.match(seed['user-data'], /# offline/);
  } finally {
    cache.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
