/**
 * Networks end to end on the real kernel with real QEMU: two "hosts" are
 * network namespaces joined by a veth WAN; each runs an in-process agent whose
 * net layer and QEMU run inside its namespace, against an in-process server
 * with the scheduler and IPAM. Busybox guests get addresses by DHCP, ping each
 * other over VXLAN and out through the host's NAT, a firewall edit opens a TCP
 * port without a restart, WAN packet loss does not break the overlay, a
 * spoofed source address is dropped, a guest on another network cannot reach
 * them, and a host's network goes away with its last VM. Each host's
 * metadata service (run in a child process inside its namespace, fed by the
 * agent's passes) answers every guest with its own instance id only.
 * Everything is removed afterwards, also on failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync } from 'node:fs';
import { missingRoot, missingTools } from '../../src/base/require-tool.ts';
import { ensureBusyboxDisk } from '../guests/busybox-disk.ts';
import { Rig, vmRunning, waitFor, type Host } from './netns-hosts.ts';

const skip = missingRoot() ?? missingTools('ip', 'nft', 'dnsmasq', 'bridge', 'tc', 'sysctl', 'qemu-system-x86_64', 'qemu-img', 'mkfs.vfat', 'mcopy', 'syslinux', 'cpio');
const tag = `cne${process.pid}`;
const by = { author: 'e2e' };

/** A guest's serial console: commands in, and the whole log to match answers against. */
async function shell(rig: Rig, host: Host, vmId: string) {
  const console = await host.driver.attachConsole(vmId);
  rig.consoles.push(console);
  console.on('data', () => undefined);
  let n = 0;
  return {
    /** Runs a shell command in the guest and resolves with what it printed between two markers. */
    async run(command: string, ms = 60_000): Promise<string> {
      const id = `${++n}-${Math.random().toString(36).slice(2, 8)}`;
      const re = new RegExp(`BEGIN-${id}\\r?\\n([\\s\\S]*?)END-${id}`);
      console.write(`echo BEGIN-${id}; ${command}; echo END-${id}\n`);
      let out = '';
      await waitFor(`"${command}" in the guest`, async () => {
        const m = re.exec(await host.driver.consoleLog(vmId));
        out = m?.[1] ?? '';
        return m !== null;
      }, ms);
      return out;
    },
  };
}

test('guests on two hosts share a network over VXLAN with DHCP, firewalls and isolation', { skip, timeout: 300_000 }, async () => {
  const rig = new Rig(tag);
  try {
    const disk = await ensureBusyboxDisk();
    chmodSync(rig.dir, 0o755);
    // The WAN: a veth between the two host namespaces.
    const [a, b] = [await rig.namespace(`${tag}a`), await rig.namespace(`${tag}b`)];
    await a.run({ argv: ['ip', 'link', 'add', 'wan', 'type', 'veth', 'peer', 'name', 'wan', 'netns', `${tag}b`] });
    for (const [h, ip] of [[a, '192.0.2.1/24'], [b, '192.0.2.2/24']] as const) {
      await h.run({ argv: ['ip', 'addr', 'add', ip, 'dev', 'wan'] });
      await h.run({ argv: ['ip', 'link', 'set', 'wan', 'up'] });
    }

    const t = await rig.server();
    await t.store.create({ kind: 'machine-type', name: 'tiny', spec: { cpus: 1, memoryMiB: 192, diskGiB: 1 } }, by);
    await t.store.create({ kind: 'image', name: 'busybox', spec: { arch: 'x86_64' } }, by);
    await t.store.create({ kind: 'firewall', name: 'fw', spec: { rules: [{ direction: 'ingress', action: 'accept', protocol: 'icmp' }] } }, by);
    await t.store.create({ kind: 'network', name: 'blue', spec: { ipv4: { subnet: '10.77.0.0/24' }, firewalls: ['fw'] } }, by);
    await t.store.create({ kind: 'network', name: 'red', spec: { ipv4: { subnet: '10.78.0.0/24' }, firewalls: ['fw'] } }, by);

    // Two agents, each with its QEMU and net layer inside its namespace.
    const ha = await rig.host({ name: 'ha', ns: `${tag}a`, runner: a, underlayIp: '192.0.2.1', disk });
    const hb = await rig.host({ name: 'hb', ns: `${tag}b`, runner: b, underlayIp: '192.0.2.2', disk });

    const createVm = (name: string, node: string, network: string) =>
      t.store.create({ kind: 'vm', name, spec: { image: 'busybox', machineType: 'tiny', nics: [{ network }], placement: { node } } }, by);
    const running = (name: string) => vmRunning(t, name);
    const dhcp = (host: Host, id: string, ip: string) =>
      waitFor(`DHCP for ${ip} and a shell`, async () => {
        const log = await host.driver.consoleLog(id);
        return log.includes(`CROWD-GUEST-DHCP: eth0 ${ip}/24`) && log.includes('CROWD-GUEST-READY');
      }).catch(async (e: Error) => {
        throw new Error(`${e.message}; console: ${(await host.driver.consoleLog(id)).slice(-600)}`);
      });

    await createVm('g1', 'ha', 'blue');
    await createVm('g2', 'hb', 'blue');
    const g1 = await running('g1');
    const g2 = await running('g2');
    assert.match(g1.ip, /^10\.77\.0\.\d+$/);
    assert.notEqual(g1.ip, g2.ip);
    // Each guest got exactly the address the server assigned, from its own host's dnsmasq.
    await dhcp(ha, g1.id, g1.ip);
    await dhcp(hb, g2.id, g2.ip);
    const s1 = await shell(rig, ha, g1.id);
    const s2 = await shell(rig, hb, g2.id);

    // Each guest's metadata comes from its own host's service, identified by its assigned address: its own, never the other's.
    const imds = (path: string) => `echo "MD:$(timeout 10 wget -q -O - http://169.254.169.254${path})"`;
    for (const [s, own, other, name] of [[s1, g1, g2, 'g1'], [s2, g2, g1, 'g2']] as const) {
      const id = await s.run(imds('/latest/meta-data/instance-id'));
      assert.match(id, new RegExp(`MD:${own.id}\\r?\\n`));
      assert.doesNotMatch(id, new RegExp(other.id));
      const doc = await s.run(imds('/openstack/latest/meta_data.json'));
      assert.match(doc, new RegExp(`"name": ?"${name}"`));
      assert.doesNotMatch(doc, new RegExp(other.id));
    }

    // Across hosts over VXLAN (the firewall accepts ICMP).
    assert.match(await s1.run(`ping -c 2 -W 3 ${g2.ip} >/dev/null && echo PING-OK || echo PING-FAIL`), /PING-OK/);
    // gateway: host — host a routes and masquerades the segment to an address outside it (host b's WAN side).
    assert.match(await s1.run('ping -c 2 -W 3 192.0.2.2 >/dev/null && echo NAT-OK || echo NAT-FAIL'), /NAT-OK/);

    // TCP 8080 is closed by default (deny ingress), then opened by a firewall edit — no VM restarts.
    await s2.run('(while true; do echo hello | nc -l -p 8080; done) >/dev/null 2>&1 & true');
    const connect = `echo "TCP:$(nc -w 3 ${g2.ip} 8080 </dev/null)"`;
    assert.match(await s1.run(connect), /TCP:\r?\n/);
    const fw = await t.store.get({ kind: 'firewall', project: 'default', idOrName: 'fw' });
    await t.store.update({ kind: 'firewall', project: 'default', idOrName: 'fw' }, {
      labels: {}, metadata: {},
      spec: { rules: [...(fw.spec as { rules: unknown[] }).rules, { direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['8080'] }] },
    }, by);
    await waitFor('the new rule on host b', async () => (await b.run({ argv: ['nft', 'list', 'table', 'inet', 'crowd'] })).stdout.includes('8080'));
    assert.match(await s1.run(connect), /TCP:hello/);
    const before = (await hb.driver.list()).find((v) => v.id === g2.id);
    assert.equal(before?.state, 'running');

    // 20% packet loss on host b's WAN (nftables: this kernel has no netem) does not break the overlay.
    const loss = 'table netdev cnloss {\n chain c {\n  type filter hook ingress device "wan" priority 0; policy accept;\n  numgen random mod 100 < 20 drop\n }\n}\n';
    await b.run({ argv: ['nft', '-f', '-'], input: loss });
    assert.match(await s1.run(`echo "TCP:$(nc -w 15 ${g2.ip} 8080 </dev/null)"`), /TCP:hello/);
    await b.run({ argv: ['nft', 'delete', 'table', 'netdev', 'cnloss'] });

    // A guest sending from an address the server did not assign is dropped at its tap.
    assert.match(await s1.run(`ip addr add 10.77.0.200/24 dev eth0; ping -I 10.77.0.200 -c 2 -W 2 ${g2.ip} >/dev/null && echo SPOOF-OK || echo SPOOF-FAIL; ip addr del 10.77.0.200/24 dev eth0`), /SPOOF-FAIL/);
    assert.match(await s1.run(`ping -c 1 -W 3 ${g2.ip} >/dev/null && echo PING-OK || echo PING-FAIL`), /PING-OK/);

    // The last VM of "blue" leaving host b removes the network there; g1 keeps running on host a.
    await t.store.delete({ kind: 'vm', project: 'default', idOrName: 'g2' }, by);
    await waitFor('host b to drop the network', async () => !(await b.run({ argv: ['ip', '-o', 'link', 'show'] })).stdout.includes('crowd:bridge:'));

    // A guest on another network reaches its own gateway but not the guest on "blue".
    await createVm('g3', 'ha', 'red');
    const g3 = await running('g3');
    await dhcp(ha, g3.id, g3.ip);
    const s3 = await shell(rig, ha, g3.id);
    assert.match(await s3.run('ping -c 1 -W 3 10.78.0.1 >/dev/null && echo GW-OK || echo GW-FAIL'), /GW-OK/);
    // Host a's service tells g3 from g1 (same service, other network).
    assert.match(await s3.run(imds('/latest/meta-data/instance-id')), new RegExp(`MD:${g3.id}\\r?\\n`));
    assert.match(await s1.run(imds('/latest/meta-data/instance-id')), new RegExp(`MD:${g1.id}\\r?\\n`));
    assert.match(await s3.run(`ping -c 2 -W 2 ${g1.ip} >/dev/null && echo CROSS-OK || echo CROSS-FAIL`), /CROSS-FAIL/);
  } finally {
    await rig.teardown();
  }
  for (const n of rig.namespaces) assert.equal(existsSync(`/run/netns/${n}`), false, `namespace ${n} is gone`);
});
