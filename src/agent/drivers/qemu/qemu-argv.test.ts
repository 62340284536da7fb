import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { VmConfig } from '../vm-config.ts';
import { qemuArgv } from './qemu-argv.ts';
import { vmPaths } from './vm-paths.ts';

const paths = vmPaths('/var/lib/crowd/vms', 'vm_01J');

const minimal: VmConfig = {
  id: 'vm_01J', name: 'web-1', cpus: 2, memoryMiB: 1024, image: { path: '/var/lib/crowd/images/debian.qcow2', format: 'qcow2' }, diskGiB: 10, accel: 'tcg',
};

/** One option and its value per line, so a diff shows exactly what changed. */
function lines(argv: string[]): string {
  const out: string[] = [];
  for (const a of argv) {
    if (a.startsWith('-') && !/^-\d/.test(a)) out.push(a);
    else out[out.length - 1] += ` ${a}`;
  }
  return out.join('\n') + '\n';
}

test('a minimal TCG VM gets a sandboxed, default-free QEMU on its own files', () => {
  assert.equal(lines(qemuArgv(minimal, paths)), `-name guest=web-1,debug-threads=on
-machine q35,accel=tcg
-cpu max
-smp 2
-m 1024M
-nodefaults
-no-user-config
-no-shutdown
-display none
-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny
-pidfile /var/lib/crowd/vms/vm_01J/qemu.pid
-qmp unix:/var/lib/crowd/vms/vm_01J/qmp.sock,server=on,wait=off
-chardev socket,id=console,path=/var/lib/crowd/vms/vm_01J/console.sock,server=on,wait=off,logfile=/var/lib/crowd/vms/vm_01J/console.log,logappend=on
-serial chardev:console
-drive if=none,id=disk0,file=/var/lib/crowd/vms/vm_01J/boot.qcow2,format=qcow2,discard=unmap
-device virtio-blk-pci,drive=disk0,bootindex=0
-device pcie-root-port,id=nicport0,chassis=1,port=0x10,bus=pcie.0,addr=0x10.0,multifunction=on,io-reserve=0
-device pcie-root-port,id=nicport1,chassis=2,port=0x11,bus=pcie.0,addr=0x10.1,io-reserve=0
-device pcie-root-port,id=nicport2,chassis=3,port=0x12,bus=pcie.0,addr=0x10.2,io-reserve=0
-device pcie-root-port,id=nicport3,chassis=4,port=0x13,bus=pcie.0,addr=0x10.3,io-reserve=0
-device virtio-rng-pci
`);
});

test('a KVM VM with disks, a NoCloud seed, NICs, SMBIOS and a kernel drops to its user and lists every device', () => {
  const full: VmConfig = {
    ...minimal,
    accel: 'kvm',
    disks: [{ name: 'data', sizeGiB: 20 }, { name: 'logs', sizeGiB: 5 }],
    nics: [{ tap: 'crowd-t1', mac: '52:54:00:AB:CD:01' }, { tap: 'crowd-t2', mac: '52:54:00:ab:cd:02' }],
    smbios: { manufacturer: 'crowdcloud', product: 'crowd,vm', serial: 'ds=nocloud', uuid: '0b5e1c2a-1111-4222-8333-944455556666' },
    kernel: { path: '/boot/vmlinuz', initrd: '/boot/initrd.img', append: 'console=ttyS0 root=LABEL=root' },
    seed: { path: '/var/lib/crowd/vms/vm_01J/seed.iso' },
  };
  assert.equal(lines(qemuArgv(full, paths, { runAs: 'crowd-qemu', machine: 'pc' })), `-name guest=web-1,debug-threads=on
-machine pc,accel=kvm
-cpu host
-smp 2
-m 1024M
-nodefaults
-no-user-config
-no-shutdown
-display none
-sandbox on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny
-runas crowd-qemu
-pidfile /var/lib/crowd/vms/vm_01J/qemu.pid
-qmp unix:/var/lib/crowd/vms/vm_01J/qmp.sock,server=on,wait=off
-chardev socket,id=console,path=/var/lib/crowd/vms/vm_01J/console.sock,server=on,wait=off,logfile=/var/lib/crowd/vms/vm_01J/console.log,logappend=on
-serial chardev:console
-smbios type=1,manufacturer=crowdcloud,product=crowd,,vm,serial=ds=nocloud,uuid=0b5e1c2a-1111-4222-8333-944455556666
-kernel /boot/vmlinuz
-initrd /boot/initrd.img
-append console=ttyS0 root=LABEL=root
-drive if=none,id=disk0,file=/var/lib/crowd/vms/vm_01J/boot.qcow2,format=qcow2,discard=unmap
-device virtio-blk-pci,drive=disk0,bootindex=0
-drive if=none,id=disk1,file=/var/lib/crowd/vms/vm_01J/disk-data.qcow2,format=qcow2,discard=unmap
-device virtio-blk-pci,drive=disk1
-drive if=none,id=disk2,file=/var/lib/crowd/vms/vm_01J/disk-logs.qcow2,format=qcow2,discard=unmap
-device virtio-blk-pci,drive=disk2
-drive if=none,id=seed,file=/var/lib/crowd/vms/vm_01J/seed.iso,format=raw,readonly=on
-device virtio-blk-pci,drive=seed
-netdev tap,id=net-crowd-t1,ifname=crowd-t1,script=no,downscript=no
-device virtio-net-pci,id=nic-crowd-t1,netdev=net-crowd-t1,mac=52:54:00:ab:cd:01
-netdev tap,id=net-crowd-t2,ifname=crowd-t2,script=no,downscript=no
-device virtio-net-pci,id=nic-crowd-t2,netdev=net-crowd-t2,mac=52:54:00:ab:cd:02
-device virtio-rng-pci
`);
});

test('on q35 each NIC sits on a root port of its own, with spare ports left for hot-plug', () => {
  const nics = [{ tap: 'ct0', mac: '52:54:00:00:00:01' }, { tap: 'ct1', mac: '52:54:00:00:00:02' }];
  const devices = lines(qemuArgv({ ...minimal, nics }, paths)).split('\n').filter((l) => /^-(device|netdev) (pcie-root-port|tap|virtio-net)/.test(l));
  assert.deepEqual(devices, [
    '-device pcie-root-port,id=nicport0,chassis=1,port=0x10,bus=pcie.0,addr=0x10.0,multifunction=on,io-reserve=0',
    '-device pcie-root-port,id=nicport1,chassis=2,port=0x11,bus=pcie.0,addr=0x10.1,io-reserve=0',
    '-device pcie-root-port,id=nicport2,chassis=3,port=0x12,bus=pcie.0,addr=0x10.2,io-reserve=0',
    '-device pcie-root-port,id=nicport3,chassis=4,port=0x13,bus=pcie.0,addr=0x10.3,io-reserve=0',
    '-device pcie-root-port,id=nicport4,chassis=5,port=0x14,bus=pcie.0,addr=0x10.4,io-reserve=0',
    '-device pcie-root-port,id=nicport5,chassis=6,port=0x15,bus=pcie.0,addr=0x10.5,io-reserve=0',
    '-netdev tap,id=net-ct0,ifname=ct0,script=no,downscript=no',
    '-device virtio-net-pci,id=nic-ct0,netdev=net-ct0,mac=52:54:00:00:00:01,bus=nicport0',
    '-netdev tap,id=net-ct1,ifname=ct1,script=no,downscript=no',
    '-device virtio-net-pci,id=nic-ct1,netdev=net-ct1,mac=52:54:00:00:00:02,bus=nicport1',
  ]);
});
