import type { VmConfig } from '../vm-config.ts';
import { isPcie, netdevProps, nicDeviceProps, nicPortCount, nicPortDevices, optionText, portId } from './qemu-nics.ts';
import type { VmPaths } from './vm-paths.ts';

export interface QemuArgvOptions {
  /** Drop to this user after QEMU has opened its files (only when the agent runs as root). */
  runAs?: string;
  /** Machine type (default "q35"). */
  machine?: string;
}

/** QEMU's option syntax doubles commas inside a value. */
function esc(v: string): string {
  return v.replaceAll(',', ',,');
}

/**
 * The full argv (without the binary) of one VM's QEMU: pure, so it is
 * golden-tested. Least privilege: no defaults, no user config, a seccomp
 * sandbox, an unprivileged user, and only the VM's own files plus its
 * read-only base image (and kernel, when given). No -no-reboot: a guest
 * reboot reboots; -no-shutdown keeps QEMU paused after a guest poweroff so the
 * driver sees why it stopped even if it was not watching at that moment.
 * On q35 every NIC sits on a PCIe root port of its own, plus spare ports, so
 * NICs can be hot-plugged and unplugged (qemu-nics.ts).
 */
export function qemuArgv(c: VmConfig, p: VmPaths, opts: QemuArgvOptions = {}): string[] {
  // -runas needs set*uid after the sandbox is installed, so privileges may only be "denied" without it;
  // after the switch QEMU holds no privileges to elevate, and spawn=deny blocks exec of setuid programs.
  const elevate = opts.runAs ? 'allow' : 'deny';
  const machine = opts.machine ?? 'q35';
  const argv = [
    '-name', `guest=${esc(c.name)},debug-threads=on`,
    '-machine', `${machine},accel=${c.accel}`,
    '-cpu', c.accel === 'kvm' ? 'host' : 'max',
    '-smp', String(c.cpus),
    '-m', `${c.memoryMiB}M`,
    '-nodefaults', '-no-user-config', '-no-shutdown',
    '-display', 'none',
    '-sandbox', `on,obsolete=deny,elevateprivileges=${elevate},spawn=deny,resourcecontrol=deny`,
  ];
  if (opts.runAs) argv.push('-runas', opts.runAs);
  argv.push(
    '-pidfile', p.pidFile,
    '-qmp', `unix:${esc(p.qmpSocket)},server=on,wait=off`,
    '-chardev', `socket,id=console,path=${esc(p.consoleSocket)},server=on,wait=off,logfile=${esc(p.consoleLog)},logappend=on`,
    '-serial', 'chardev:console',
  );
  const s = c.smbios ?? {};
  const smbios = (['manufacturer', 'product', 'serial', 'uuid'] as const).filter((k) => s[k] !== undefined).map((k) => `${k}=${esc(s[k]!)}`);
  if (smbios.length > 0) argv.push('-smbios', `type=1,${smbios.join(',')}`);
  if (c.kernel) {
    argv.push('-kernel', c.kernel.path);
    if (c.kernel.initrd) argv.push('-initrd', c.kernel.initrd);
    if (c.kernel.append) argv.push('-append', c.kernel.append);
  }
  argv.push(
    '-drive', `if=none,id=disk0,file=${esc(p.bootDisk)},format=qcow2,discard=unmap`,
    '-device', `virtio-blk-pci,drive=disk0,bootindex=0`,
  );
  (c.disks ?? []).forEach((d, i) => {
    argv.push('-drive', `if=none,id=disk${i + 1},file=${esc(p.disk(d.name))},format=qcow2,discard=unmap`);
    argv.push('-device', `virtio-blk-pci,drive=disk${i + 1}`);
  });
  if (c.seed) argv.push('-drive', `if=none,id=seed,file=${esc(c.seed.path)},format=raw,readonly=on`, '-device', 'virtio-blk-pci,drive=seed');
  const pcie = isPcie(machine);
  if (pcie) for (const port of nicPortDevices(nicPortCount(c.nics?.length ?? 0))) argv.push('-device', port);
  (c.nics ?? []).forEach((n, i) => {
    argv.push('-netdev', optionText(netdevProps(n), 'type'));
    argv.push('-device', optionText(nicDeviceProps(n, pcie ? portId(i) : undefined), 'driver'));
  });
  argv.push('-device', 'virtio-rng-pci');
  return argv;
}
