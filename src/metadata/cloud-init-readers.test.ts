import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { missingTools } from '../base/require-tool.ts';
import { ExecRunner, type Runner } from '../base/runner.ts';
import { exampleGuest } from './example-guest.ts';
import { guestUuid } from './guest-info.ts';
import { MetadataService } from './metadata-service.ts';

// cloud-init's own readers (Debian's package, unpacked, never installed) against the service on loopback.
const python = '/usr/bin/python3';
const cacheDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../.cache/cloud-init-deb');
const sitePackages = join(cacheDir, 'root/usr/lib/python3/dist-packages');

/** Downloads and unpacks Debian's cloud-init once into .cache (renamed into place whole, so a failed run leaves nothing half-made). */
async function unpackedCloudInit(runner: Runner): Promise<string> {
  if (existsSync(join(sitePackages, 'cloudinit/sources/helpers/openstack.py'))) return sitePackages;
  await mkdir(dirname(cacheDir), { recursive: true });
  const work = await mkdtemp(`${cacheDir}.tmp-`);
  try {
    await runner.run({ argv: ['apt-get', 'download', 'cloud-init'], cwd: work, timeoutMs: 180_000 });
    const deb = (await readdir(work)).find((n) => n.startsWith('cloud-init_') && n.endsWith('.deb'));
    if (!deb) throw new Error('apt-get download cloud-init left no .deb');
    await runner.run({ argv: ['dpkg', '-x', join(work, deb), join(work, 'root')] });
    await rm(cacheDir, { recursive: true, force: true });
    await rename(work, cacheDir);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return sitePackages;
}

const script = String.raw`
import json, sys
from cloudinit.sources.helpers import ec2, openstack
from cloudinit.sources.DataSourceEc2 import convert_ec2_metadata_network_config
url = sys.argv[1]
macs = {'52:54:00:12:34:56': 'eth0', '52:54:00:ab:cd:ef': 'eth1'}
md = ec2.get_instance_metadata(api_version='2009-04-04', metadata_address=url, retries=0, timeout=5)
md_new = ec2.get_instance_metadata(api_version='2021-03-23', metadata_address=url, retries=0, timeout=5)
ud = ec2.get_instance_userdata(api_version='2021-03-23', metadata_address=url, retries=0, timeout=5)
ident = ec2.get_instance_identity(api_version='2021-03-23', metadata_address=url, retries=0, timeout=5)
ec2_net = convert_ec2_metadata_network_config(md_new['network'], macs_to_nics=macs)
os_res = openstack.MetadataReader(url, retries=0, timeout=5).read_v2()
os_net = openstack.convert_net_json(os_res['networkdata'], known_macs=macs)
def text(v):
    return v.decode() if isinstance(v, bytes) else v
print(json.dumps({
    'ec2': md, 'ec2_2021': md_new, 'userdata': text(ud), 'identity': ident['document'], 'ec2_net': ec2_net,
    'os_meta': os_res['metadata'], 'os_userdata': text(os_res['userdata']), 'os_vendor2': os_res.get('vendordata2'),
    'os_net': os_net,
}, default=str))
`;

test(
  "cloud-init's own EC2 and OpenStack readers parse the service's answers",
  { skip: missingTools(python, 'dpkg', 'apt-get'), timeout: 300_000 },
  async (t) => {
    const runner = new ExecRunner();
    const site = await unpackedCloudInit(runner);
    const guest = exampleGuest();
    const service = new MetadataService({ identify: (c) => (c.remoteAddress === '127.0.0.1' ? guest : undefined) });
    t.after(() => service.close());
    const [addr] = await service.listen([{ host: '127.0.0.1', port: 0 }]);
    const out = await runner.run({
      argv: [python, '-c', script, `http://127.0.0.1:${addr!.port}`],
      env: { PYTHONPATH: site, PYTHONDONTWRITEBYTECODE: '1' },
      timeoutMs: 120_000,
    });
    const r = JSON.parse(out.stdout.trim().split('\n').at(-1)!);
    const key = guest.sshKeys[0];

    assert.equal(r.ec2['instance-id'], guest.instanceId);
    assert.equal(r.ec2['local-hostname'], 'web-1');
    assert.equal(r.ec2.hostname, 'web-1');
    assert.deepEqual(Object.keys(r.ec2['public-keys']), ['alice@example']);
    assert.equal(r.ec2['public-keys']['alice@example'], key);
    assert.equal(r.ec2.placement['availability-zone'], 'site-1a');
    assert.equal(r.ec2_2021.network.interfaces.macs['52:54:00:12:34:56']['local-ipv4s'], '10.0.0.5');
    assert.equal(r.userdata, guest.userData);
    assert.equal(r.identity.region, 'site-1');
    assert.deepEqual(r.ec2_net.ethernets.eth0.match, { macaddress: '52:54:00:12:34:56' });
    assert.equal(r.ec2_net.ethernets.eth0.dhcp6, true);
    assert.equal(r.ec2_net.ethernets.eth1['set-name'], 'eth1');

    assert.equal(r.os_meta.uuid, guestUuid(guest.instanceId));
    assert.equal(r.os_meta['instance-id'], guestUuid(guest.instanceId));
    assert.equal(r.os_meta['local-hostname'], 'web-1');
    assert.deepEqual(r.os_meta.public_keys, { 'alice@example': key });
    assert.equal(r.os_userdata, guest.userData);
    assert.deepEqual(r.os_vendor2, { 'cloud-init': guest.vendorData });
    const eth0 = r.os_net.config.find((c: { name?: string }) => c.name === 'eth0');
    assert.equal(eth0.mac_address, '52:54:00:12:34:56');
    assert.equal(eth0.mtu, 1450);
    assert.deepEqual(
      eth0.subnets.map((s: { type: string; address?: string }) => [s.type, s.address ?? null]),
      [
        ['dhcp4', null],
        ['static6', 'fd00:1::5'],
      ],
    );
    const eth1 = r.os_net.config.find((c: { name?: string }) => c.name === 'eth1');
    assert.deepEqual(eth1.subnets[0], { type: 'static', address: '192.168.7.9', netmask: '255.255.255.0', routes: [], ipv4: true });
    assert.ok(r.os_net.config.some((c: { type: string; address?: string }) => c.type === 'nameserver' && c.address === '10.0.0.1'));
    assert.ok(!out.stdout.includes('SECRET-VALUE'), 'no secret in what cloud-init reads');
  },
);
