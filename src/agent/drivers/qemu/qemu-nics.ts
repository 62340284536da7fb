import type { NicConfig } from '../vm-config.ts';

/** Free hot-plug slots a q35 VM gets beyond its cold-booted NICs (each NIC sits on a PCIe root port of its own). */
export const spareNicPorts = 4;

/** A NIC as QEMU holds it: the tap, the guest's MAC, and the PCIe root port it sits on (none on a plain PCI machine). */
export interface PluggedNic extends NicConfig {
  port?: string;
}

/**
 * QEMU ids of a NIC's backend and device, derived from its tap (unique on the
 * host), so cold-booted and hot-plugged NICs share one scheme and a re-adopted
 * VM's NICs are found by id.
 */
export function nicIds(tap: string): { netdev: string; device: string } {
  return { netdev: `net-${tap}`, device: `nic-${tap}` };
}

/** q35 (PCI Express) cannot hot-plug onto its root bus: NICs go onto reserved root ports; i440fx hot-plugs onto pci.0. */
export function isPcie(machine: string): boolean {
  return machine.includes('q35');
}

/** The id of the i-th reserved root port. */
export function portId(i: number): string {
  return `nicport${i}`;
}

/** How many root ports a VM gets at boot: one per NIC plus the spares. */
export function nicPortCount(nics: number): number {
  return nics + spareNicPorts;
}

/**
 * The root ports' -device values: packed 8 functions per slot from slot 0x10,
 * like libvirt; no I/O window (virtio-net needs none, and I/O space runs out
 * after a dozen ports otherwise).
 */
export function nicPortDevices(count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const slot = (0x10 + (i >> 3)).toString(16);
    const fn = i & 7;
    return `pcie-root-port,id=${portId(i)},chassis=${i + 1},port=0x${(0x10 + i).toString(16)},bus=pcie.0,addr=0x${slot}.${fn}${fn === 0 ? ',multifunction=on' : ''},io-reserve=0`;
  });
}

/** The tap backend, with the same options at boot (-netdev) and at hot-plug (netdev_add). */
export function netdevProps(nic: NicConfig): Record<string, string> {
  return { type: 'tap', id: nicIds(nic.tap).netdev, ifname: nic.tap, script: 'no', downscript: 'no' };
}

/** The guest's virtio NIC, on `port` when the machine has root ports (-device at boot, device_add at hot-plug). */
export function nicDeviceProps(nic: NicConfig, port?: string): Record<string, string> {
  const ids = nicIds(nic.tap);
  return { driver: 'virtio-net-pci', id: ids.device, netdev: ids.netdev, mac: nic.mac.toLowerCase(), ...(port ? { bus: port } : {}) };
}

/** A props object as one QEMU command-line value: the first value bare, then key=value pairs. */
export function optionText(props: Record<string, string>, first: string): string {
  return [props[first], ...Object.entries(props).filter(([k]) => k !== first).map(([k, v]) => `${k}=${v}`)].join(',');
}

interface PciDevice {
  qdev_id?: string;
  pci_bridge?: { devices?: PciDevice[] };
}

/**
 * From `query-pci`: the NICs plugged in (by device id, with the root port they
 * sit on) and every reserved root port. A device the guest has not released
 * yet is still listed: it is still there.
 */
export function pciNics(buses: { devices?: PciDevice[] }[]): { nics: { tap: string; port?: string }[]; ports: string[] } {
  const nics: { tap: string; port?: string }[] = [];
  const ports: string[] = [];
  const walk = (devices: PciDevice[] | undefined, parent?: string) => {
    for (const d of devices ?? []) {
      const id = d.qdev_id ?? '';
      if (id.startsWith('nic-')) nics.push({ tap: id.slice(4), ...(parent ? { port: parent } : {}) });
      if (/^nicport\d+$/.test(id)) ports.push(id);
      walk(d.pci_bridge?.devices, id || undefined);
    }
  };
  for (const b of buses) walk(b.devices);
  return { nics, ports };
}

/** The first reserved root port no NIC sits on. */
export function freePort(ports: string[], nics: PluggedNic[]): string | undefined {
  const used = new Set(nics.map((n) => n.port));
  return [...ports].sort((a, b) => Number(a.slice(7)) - Number(b.slice(7))).find((p) => !used.has(p));
}
