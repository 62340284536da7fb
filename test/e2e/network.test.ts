/**
 * Networks end to end on the real kernel with real QEMU: three "hosts" are
 * network namespaces on a WAN bridge, each running its own `crowd agent`
 * process enrolled against a real `crowd server` (TLS, pinned by the join
 * token) that listens in a fourth, control namespace; the test drives it with
 * the `crowd` CLI. Busybox guests get addresses by DHCP, ping each other over
 * VXLAN and out through the host's NAT, a firewall edit opens a TCP port
 * without a restart, WAN packet loss does not break the overlay, a spoofed
 * source address or MAC is dropped, a killed agent comes back and re-adopts its
 * running guest, VXLAN follows the segment's members, a host's network goes
 * away with its last VM, a guest on another network cannot reach them, and
 * each host's metadata service answers every guest with its own instance id
 * only (and a guest claiming another's address, nothing). Everything is
 * removed afterwards, also on failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { missingRoot, missingTools } from '../../src/base/require-tool.ts';
import { ensureBusyboxDisk, guestMarkers } from '../guests/busybox-disk.ts';
import { until } from './crowd-processes.ts';
import { NetnsCluster, type ClusterHost } from './netns-cluster.ts';

const skip = missingRoot() ?? missingTools('ip', 'nft', 'dnsmasq', 'bridge', 'tc', 'sysctl', 'socat', 'openssl', 'qemu-system-x86_64', 'qemu-img', 'mkfs.vfat', 'mcopy', 'syslinux', 'cpio');
const tag = `cne${process.pid}`;

/** A guest's serial console: commands in, and the whole log to match answers against. */
async function shell(site: NetnsCluster, host: ClusterHost, vmId: string) {
  const console = await site.attachConsole(host, vmId);
  let n = 0;
  return {
    /** Runs a shell command in the guest and resolves with what it printed between two markers. */
    async run(command: string, ms = 60_000): Promise<string> {
      const id = `${++n}-${Math.random().toString(36).slice(2, 8)}`;
      const re = new RegExp(`BEGIN-${id}\\r?\\n([\\s\\S]*?)END-${id}`);
      console.write(`echo BEGIN-${id}; ${command}; echo END-${id}\n`);
      let out = '';
      await until(`"${command}" in the guest`, () => {
        const m = re.exec(site.consoleLog(host, vmId));
        out = m?.[1] ?? '';
        return m !== null;
      }, ms);
      return out;
    },
  };
}

test('guests on three hosts, each with its own crowd agent, share a network over VXLAN with DHCP, firewalls and isolation', { skip, timeout: 300_000 }, async (t) => {
  const site = new NetnsCluster(tag);
  // Also after a failure or a timeout (after hooks run then, unlike a finally around a body still waiting).
  t.after(() => site.teardown());
  await site.start({ busybox: await ensureBusyboxDisk() });
  const cli = (...argv: string[]) => site.cli(...argv);
  await cli('machine-type', 'create', 'tiny', '--cpus', '1', '--memory', '192', '--disk', '1');
  await cli('image', 'create', 'busybox', '--arch', 'x86_64');
  await cli('firewall', 'create', 'fw', '--rule', 'ingress accept icmp');
  await cli('network', 'create', 'blue', '--subnet', '10.77.0.0/24', '--firewall', 'fw');
  await cli('network', 'create', 'red', '--subnet', '10.78.0.0/24', '--firewall', 'fw');
  const [ha, hb, hc] = await site.hostsNamed('ha', 'hb', 'hc');

  const createVm = (name: string, host: ClusterHost, network: string) =>
    cli('vm', 'create', name, '--image', 'busybox', '--machine-type', 'tiny', '--network', network, '--node', host.name);
  const dhcp = (host: ClusterHost, id: string, ip: string) =>
    until(`DHCP for ${ip} and a shell`, () => {
      const log = site.consoleLog(host, id);
      return log.includes(`CROWD-GUEST-DHCP: eth0 ${ip}/24`) && log.includes(guestMarkers.ready);
    }, 90_000).catch((e: Error) => {
      throw new Error(`${e.message}; console: ${site.consoleLog(host, id).slice(-600)}`);
    });
  const links = async (host: ClusterHost) => (await host.runner.run({ argv: ['ip', '-o', 'link', 'show'] })).stdout;
  /** The VXLAN peers a host floods to (head-end replication): the `dst` of its all-zero FDB entries. */
  const vxlanPeers = async (host: ClusterHost) =>
    [...(await host.runner.run({ argv: ['bridge', 'fdb', 'show'] })).stdout.matchAll(/^00:00:00:00:00:00 dev \S+ dst (\S+)/gm)].map((m) => m[1]!).sort();
  /** Waits until a host replicates to exactly the hosts in `want`. */
  const peers = async (host: ClusterHost, want: ClusterHost[]) => {
    const expected = want.map((h) => h.underlayIp).sort().join();
    let seen = '';
    await until(`host ${host.name} to replicate to [${expected}]`, async () => (seen = (await vxlanPeers(host)).join()) === expected, 60_000).catch((e: Error) => {
      throw new Error(`${e.message}; it replicates to [${seen}]`);
    });
  };

  await createVm('g1', ha, 'blue');
  await createVm('g2', hb, 'blue');
  const g1 = await site.vmRunning('g1');
  const g2 = await site.vmRunning('g2');
  assert.match(g1.ip, /^10\.77\.0\.\d+$/);
  assert.notEqual(g1.ip, g2.ip);
  // Each guest got exactly the address the server assigned, from its own host's dnsmasq.
  await dhcp(ha, g1.id, g1.ip);
  await dhcp(hb, g2.id, g2.ip);
  const s1 = await shell(site, ha, g1.id);
  const s2 = await shell(site, hb, g2.id);
  // Host c has no VM on "blue": no bridge there, and a and b replicate to each other only.
  assert.doesNotMatch(await links(hc), /crowd:bridge:/);
  await peers(ha, [hb]);
  await peers(hb, [ha]);

  // Each guest's metadata comes from its own host's agent, identified by its assigned address: its own, never the other's.
  const imds = (path: string, seconds = 10) => `echo "MD:$(timeout ${seconds} wget -q -O - http://169.254.169.254${path})"`;
  for (const [s, own, other, name] of [[s1, g1, g2, 'g1'], [s2, g2, g1, 'g2']] as const) {
    const id = await s.run(imds('/latest/meta-data/instance-id'));
    assert.match(id, new RegExp(`MD:${own.id}\\r?\\n`));
    assert.doesNotMatch(id, new RegExp(other.id));
    const doc = await s.run(imds('/openstack/latest/meta_data.json'));
    assert.match(doc, new RegExp(`"name": ?"${name}"`));
    assert.doesNotMatch(doc, new RegExp(other.id));
    // The same service on the guest's link at fe80::a9fe:a9fe, identified by the link-local address its pinned MAC gives it
    // (usable once the guest's duplicate address detection is done, so asked until it answers).
    let id6 = '';
    const md6 = `echo "MD6:$(timeout 10 wget -q -O - 'http://[fe80::a9fe:a9fe%eth0]/latest/meta-data/instance-id')"`;
    await until(`${name} to read its metadata over IPv6 link-local`, async () => /MD6:\S/.test((id6 = await s.run(md6))), 60_000).catch(() => assert.fail(`${name} over IPv6: ${id6}`));
    assert.match(id6, new RegExp(`MD6:${own.id}\\r?\\n`));
  }

  // Across hosts over VXLAN (the firewall accepts ICMP).
  assert.match(await s1.run(`ping -c 2 -W 3 ${g2.ip} >/dev/null && echo PING-OK || echo PING-FAIL`), /PING-OK/);
  // gateway: host — host a routes and masquerades the segment to an address outside it (host b's WAN side).
  assert.match(await s1.run(`ping -c 2 -W 3 ${hb.underlayIp} >/dev/null && echo NAT-OK || echo NAT-FAIL`), /NAT-OK/);

  // TCP 8080 is closed by default (deny ingress), then opened by a firewall edit through `crowd apply` — no VM restarts.
  const g2Qemu = await site.qemu(hb, g2.id);
  await s2.run('(while true; do echo hello | nc -l -p 8080; done) >/dev/null 2>&1 & true');
  const connect = `echo "TCP:$(nc -w 3 ${g2.ip} 8080 </dev/null)"`;
  assert.match(await s1.run(connect), /TCP:\r?\n/);
  const fwFile = join(site.dir, 'fw.yaml');
  writeFileSync(fwFile, [
    'kind: firewall',
    'name: fw',
    'spec:',
    '  rules:',
    '    - {direction: ingress, action: accept, protocol: icmp}',
    "    - {direction: ingress, action: accept, protocol: tcp, ports: ['8080']}",
    '',
  ].join('\n'));
  await cli('apply', '-f', fwFile, '--reason', 'open 8080');
  await until('the new rule on host b', async () => (await hb.runner.run({ argv: ['nft', 'list', 'table', 'inet', 'crowd'] })).stdout.includes('8080'), 60_000);
  assert.match(await s1.run(connect), /TCP:hello/);
  assert.deepEqual(await site.qemu(hb, g2.id), g2Qemu, 'the same QEMU serves g2');

  // 20% packet loss on host b's WAN (nftables: this kernel has no netem) does not break the overlay.
  const loss = 'table netdev cnloss {\n chain c {\n  type filter hook ingress device "wan" priority 0; policy accept;\n  numgen random mod 100 < 20 drop\n }\n}\n';
  await hb.runner.run({ argv: ['nft', '-f', '-'], input: loss });
  assert.match(await s1.run(`echo "TCP:$(nc -w 15 ${g2.ip} 8080 </dev/null)"`), /TCP:hello/);
  await hb.runner.run({ argv: ['nft', 'delete', 'table', 'netdev', 'cnloss'] });

  // A guest sending from an address the server did not assign is dropped at its tap.
  assert.match(await s1.run(`ip addr add 10.77.0.200/24 dev eth0; ping -I 10.77.0.200 -c 2 -W 2 ${g2.ip} >/dev/null && echo SPOOF-OK || echo SPOOF-FAIL; ip addr del 10.77.0.200/24 dev eth0`), /SPOOF-FAIL/);
  // …and so is one sending from a MAC it was not given, with its own address.
  const macSpoof = await s1.run(`m=$(cat /sys/class/net/eth0/address); ip link set dev eth0 address 52:54:00:de:ad:01 && cat /sys/class/net/eth0/address; ping -c 2 -W 2 ${g2.ip} >/dev/null && echo SPOOF-OK || echo SPOOF-FAIL; ip link set dev eth0 address $m`);
  assert.match(macSpoof, /52:54:00:de:ad:01[\s\S]*SPOOF-FAIL/, 'the MAC changed, and nothing got through');
  assert.match(await s1.run(`ping -c 1 -W 3 ${g2.ip} >/dev/null && echo PING-OK || echo PING-FAIL`), /PING-OK/);

  // Host a's agent is killed and started again: g1's QEMU runs on untouched (same pid, one boot), and the new agent adopts it.
  const g1Qemu = await site.qemu(ha, g1.id);
  assert.ok(g1Qemu.alive);
  const oldAgent = ha.agent.pid;
  await site.restartAgent(ha);
  assert.notEqual(ha.agent.pid, oldAgent);
  assert.deepEqual(await site.qemu(ha, g1.id), g1Qemu, 'the same QEMU, still running');
  assert.equal(site.consoleLog(ha, g1.id).split(guestMarkers.ready).length - 1, 1, 'g1 did not boot again');
  assert.equal((await site.client.vms.get('g1')).status.phase, 'running');
  // The restarted agent serves g1's metadata again, and the overlay still carries g1's traffic.
  let md = '';
  await until('the restarted agent\'s metadata service', async () => /MD:\S/.test((md = await s1.run(imds('/latest/meta-data/instance-id')))), 60_000);
  assert.match(md, new RegExp(`MD:${g1.id}\\r?\\n`));
  assert.match(await s1.run(`ping -c 2 -W 3 ${g2.ip} >/dev/null && echo PING-OK || echo PING-FAIL`), /PING-OK/);

  // A guest on host c joins "blue": the overlay now spans three hosts, each replicating to exactly the others.
  await createVm('g3', hc, 'blue');
  const g3 = await site.vmRunning('g3');
  await dhcp(hc, g3.id, g3.ip);
  const s3 = await shell(site, hc, g3.id);
  await peers(ha, [hb, hc]);
  await peers(hc, [ha, hb]);
  assert.match(await s3.run(`ping -c 2 -W 3 ${g1.ip} >/dev/null && echo PING-OK || echo PING-FAIL`), /PING-OK/);

  // The last VM of "blue" leaving host b removes the network there (links and dnsmasq); the others stop replicating to b.
  await cli('vm', 'delete', 'g2');
  await until('host b to drop the network', async () => !(await links(hb)).includes('crowd:bridge:'), 60_000);
  await until('host b\'s dnsmasq to stop', () => !existsSync(hb.runDir) || !readdirSync(hb.runDir).some((f) => f.endsWith('.pid')), 30_000);
  await peers(ha, [hc]);
  await peers(hc, [ha]);
  assert.match(await s1.run(`ping -c 2 -W 3 ${g3.ip} >/dev/null && echo PING-OK || echo PING-FAIL`), /PING-OK/);

  // A guest on another network reaches its own gateway but no guest on "blue".
  await createVm('g4', ha, 'red');
  const g4 = await site.vmRunning('g4');
  await dhcp(ha, g4.id, g4.ip);
  const s4 = await shell(site, ha, g4.id);
  assert.match(await s4.run('ping -c 1 -W 3 10.78.0.1 >/dev/null && echo GW-OK || echo GW-FAIL'), /GW-OK/);
  // Host a's service tells g4 from g1 (same service, other network).
  assert.match(await s4.run(imds('/latest/meta-data/instance-id')), new RegExp(`MD:${g4.id}\\r?\\n`));
  // g1 claiming g4's address gets nothing: its tap drops the spoofed source before the metadata service could answer.
  const spoofed = await s1.run(`ip addr add ${g4.ip}/32 dev eth0; ip route add 169.254.169.254 via 10.77.0.1 src ${g4.ip}; ${imds('/latest/meta-data/instance-id', 5)}; ip route del 169.254.169.254; ip addr del ${g4.ip}/32 dev eth0`);
  assert.match(spoofed, /MD:\r?\n/);
  assert.match(await s1.run(imds('/latest/meta-data/instance-id')), new RegExp(`MD:${g1.id}\\r?\\n`));
  assert.match(await s4.run(`ping -c 2 -W 2 ${g1.ip} >/dev/null && echo CROSS-OK || echo CROSS-FAIL`), /CROSS-FAIL/);
  assert.match(await s4.run(`ping -c 2 -W 2 ${g3.ip} >/dev/null && echo CROSS-OK || echo CROSS-FAIL`), /CROSS-FAIL/);

  // The restarted agent drives the QEMU it adopted: deleting g1 stops that process, and host c stops replicating to host a.
  await cli('vm', 'delete', 'g1');
  await until('g1\'s QEMU to stop', async () => !(await site.qemu(ha, g1.id, g1Qemu.pid)).alive, 60_000);
  await peers(hc, []);
  await site.teardown();
  assert.deepEqual(site.leftovers(), [], 'nothing of the rig is left');
});
