/**
 * A real cloud guest end to end: a stock Debian 12 image with cloud-init
 * (test/guests/build-debian-cloud-guest.sh) boots under TCG on a namespaced
 * host run by its own `crowd agent` process, against a real `crowd server`
 * driven with the `crowd` CLI. Its cloud-init picks the OpenStack datasource
 * from the SMBIOS strings crowdcloud sets, reads its instance id and
 * user-data from the agent's metadata service, writes a marker with that id
 * to the console, and installs the test's SSH key, with which the test then
 * logs in. Everything is removed afterwards, also on failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { missingRoot, missingTools } from '../../src/base/require-tool.ts';
import { ExecRunner } from '../../src/base/runner.ts';
import { guestUuid } from '../../src/metadata/guest-info.ts';
import { cloudInitFinalMarker, ensureDebianCloudDisk } from '../guests/debian-cloud-disk.ts';
import { until } from './crowd-processes.ts';
import { NetnsCluster } from './netns-cluster.ts';

const skip = missingRoot() ?? missingTools('ip', 'nft', 'dnsmasq', 'bridge', 'tc', 'sysctl', 'socat', 'openssl', 'qemu-system-x86_64', 'qemu-img', 'debootstrap', 'mkfs.ext4', 'mkfs.vfat', 'mcopy', 'syslinux', 'ssh', 'ssh-keygen');
const tag = `ccg${process.pid}`;
const root = new ExecRunner();

test('a stock Debian cloud guest reads its id and user-data from the OpenStack metadata service and accepts the injected SSH key', { skip, timeout: 600_000 }, async (t) => {
  const site = new NetnsCluster(tag);
  t.after(() => site.teardown());
  // Built once and cached (a minute or two); the guest itself boots in 30–45 s with 2 vCPUs under TCG.
  await site.start({ 'debian-12': await ensureDebianCloudDisk() });
  const key = join(site.dir, 'id_ed25519');
  await root.run({ argv: ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'crowd-e2e', '-f', key] });
  const publicKey = readFileSync(`${key}.pub`, 'utf8').trim();

  const host = await site.host('h1');
  await site.cli('machine-type', 'create', 'small', '--cpus', '2', '--memory', '1024', '--disk', '3');
  await site.cli('image', 'create', 'debian-12', '--arch', 'x86_64');
  await site.cli('firewall', 'create', 'ssh', '--rule', 'ingress accept tcp 22');
  await site.cli('network', 'create', 'lan', '--subnet', '10.79.0.0/24', '--gateway-mode', 'host', '--firewall', 'ssh');
  const userData = [
    '#cloud-config',
    'ssh_authorized_keys:',
    `  - ${publicKey}`,
    'runcmd:',
    '  - echo "CROWD-CLOUD-MARKER $(cat /var/lib/cloud/data/instance-id)" > /dev/ttyS0',
    '',
  ].join('\n');
  const vmFile = join(site.dir, 'deb1.json');
  writeFileSync(vmFile, JSON.stringify({ kind: 'vm', name: 'deb1', spec: { image: 'debian-12', machineType: 'small', nics: [{ network: 'lan' }], placement: { node: 'h1' }, userData } }));
  await site.cli('apply', '-f', vmFile);
  const vm = await site.vmRunning('deb1');

  // The marker carries the instance id cloud-init read from crowdcloud's OpenStack meta_data.json.
  const consoleTail = () => site.consoleLog(host, vm.id).slice(-2000);
  await until('cloud-init to finish', () => site.consoleLog(host, vm.id).includes(cloudInitFinalMarker), 240_000).catch((e: Error) => {
    throw new Error(`${e.message}; console: ${consoleTail()}`);
  });
  const log = site.consoleLog(host, vm.id);
  assert.match(log, new RegExp(`CROWD-CLOUD-MARKER ${guestUuid(vm.id)}\\r?\\n`), consoleTail());
  assert.match(log, new RegExp(`${cloudInitFinalMarker} ds=DataSourceOpenStack`));

  // sshd takes the injected key (about a second after cloud-init's final stage).
  const ssh = ['ip', 'netns', 'exec', host.ns, 'ssh', '-i', key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', `debian@${vm.ip}`];
  let who = '';
  await until('an SSH login with the injected key', async () => {
    who = await root.run({ argv: [...ssh, 'id', '-un'] }).then((r) => r.stdout.trim(), () => '');
    return who !== '';
  }, 60_000);
  assert.equal(who, 'debian');
  await site.teardown();
  assert.deepEqual(site.leftovers(), [], 'nothing of the rig is left');
});
