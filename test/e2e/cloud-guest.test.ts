/**
 * A real cloud guest end to end: a stock Debian 12 image with cloud-init
 * (test/guests/build-debian-cloud-guest.sh) boots under TCG on a namespaced
 * host's network. Its cloud-init picks the OpenStack datasource from the
 * SMBIOS strings crowdcloud sets, reads its instance id and user-data from the
 * host's metadata service, writes a marker with that id to the console, and
 * installs the test's SSH key, with which the test then logs in.
 * Everything is removed afterwards, also on failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { missingRoot, missingTools } from '../../src/base/require-tool.ts';
import { guestUuid } from '../../src/metadata/guest-info.ts';
import { cloudInitFinalMarker, ensureDebianCloudDisk } from '../guests/debian-cloud-disk.ts';
import { Rig, root, vmRunning, waitFor } from './netns-hosts.ts';

const skip = missingRoot() ?? missingTools('ip', 'nft', 'dnsmasq', 'bridge', 'tc', 'sysctl', 'qemu-system-x86_64', 'qemu-img', 'debootstrap', 'mkfs.ext4', 'mkfs.vfat', 'mcopy', 'syslinux', 'ssh', 'ssh-keygen');
const tag = `ccg${process.pid}`;
const by = { author: 'e2e' };

test('a stock Debian cloud guest reads its id and user-data from the OpenStack metadata service and accepts the injected SSH key', { skip, timeout: 600_000 }, async () => {
  const rig = new Rig(tag);
  try {
    // Built once and cached (a minute or two); the guest itself boots in 30–45 s with 2 vCPUs under TCG.
    const disk = await ensureDebianCloudDisk();
    chmodSync(rig.dir, 0o755);
    const key = join(rig.dir, 'id_ed25519');
    await root.run({ argv: ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'crowd-e2e', '-f', key] });
    const publicKey = readFileSync(`${key}.pub`, 'utf8').trim();

    const ns = await rig.namespace(tag);
    // The host's underlay address, on a veth (this kernel has no dummy links); there is no second host.
    await ns.run({ argv: ['ip', 'link', 'add', 'wan', 'type', 'veth', 'peer', 'name', 'wan-peer'] });
    await ns.run({ argv: ['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'wan'] });
    await ns.run({ argv: ['ip', 'link', 'set', 'wan', 'up'] });
    const t = await rig.server();
    const host = await rig.host({ name: 'h1', ns: tag, runner: ns, underlayIp: '192.0.2.1', disk });
    await t.store.create({ kind: 'machine-type', name: 'small', spec: { cpus: 2, memoryMiB: 1024, diskGiB: 3 } }, by);
    await t.store.create({ kind: 'image', name: 'debian-12', spec: { arch: 'x86_64' } }, by);
    await t.store.create({ kind: 'firewall', name: 'ssh', spec: { rules: [{ direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['22'] }] } }, by);
    await t.store.create({ kind: 'network', name: 'lan', spec: { ipv4: { subnet: '10.79.0.0/24' }, gateway: { mode: 'host' }, firewalls: ['ssh'] } }, by);
    const userData = [
      '#cloud-config',
      'ssh_authorized_keys:',
      `  - ${publicKey}`,
      'runcmd:',
      '  - echo "CROWD-CLOUD-MARKER $(cat /var/lib/cloud/data/instance-id)" > /dev/ttyS0',
      '',
    ].join('\n');
    await t.store.create({ kind: 'vm', name: 'deb1', spec: { image: 'debian-12', machineType: 'small', nics: [{ network: 'lan' }], placement: { node: 'h1' }, userData } }, by);
    const vm = await vmRunning(t, 'deb1');

    // The marker carries the instance id cloud-init read from crowdcloud's OpenStack meta_data.json.
    const consoleTail = async () => (await host.driver.consoleLog(vm.id)).slice(-2000);
    await waitFor('cloud-init to finish', async () => (await host.driver.consoleLog(vm.id)).includes(cloudInitFinalMarker), 240_000).catch(async (e: Error) => {
      throw new Error(`${e.message}; console: ${await consoleTail()}`);
    });
    const log = await host.driver.consoleLog(vm.id);
    assert.match(log, new RegExp(`CROWD-CLOUD-MARKER ${guestUuid(vm.id)}\\r?\\n`), await consoleTail());
    assert.match(log, new RegExp(`${cloudInitFinalMarker} ds=DataSourceOpenStack`));

    // sshd takes the injected key (about a second after cloud-init's final stage).
    const ssh = ['ip', 'netns', 'exec', tag, 'ssh', '-i', key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', `debian@${vm.ip}`];
    let who = '';
    await waitFor('an SSH login with the injected key', async () => {
      who = await root.run({ argv: [...ssh, 'id', '-un'] }).then((r) => r.stdout.trim(), () => '');
      return who !== '';
    }, 60_000);
    assert.equal(who, 'debian');
  } finally {
    await rig.teardown();
  }
  for (const n of rig.namespaces) assert.equal(existsSync(`/run/netns/${n}`), false, `namespace ${n} is gone`);
});
