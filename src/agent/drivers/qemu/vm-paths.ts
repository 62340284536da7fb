import { join } from 'node:path';

/** Where one VM's files live: everything under `<runDir>/<id>/`, nothing elsewhere. */
export interface VmPaths {
  dir: string;
  config: string;
  bootDisk: string;
  pidFile: string;
  qmpSocket: string;
  consoleSocket: string;
  consoleLog: string;
  /** QEMU's own stdout and stderr. */
  qemuLog: string;
  /** Written by the driver when it saw why the VM ended. */
  exitFile: string;
  disk(name: string): string;
}

/** Unix socket paths are limited to 107 bytes on Linux. */
export const maxSocketPath = 107;

export function vmPaths(runDir: string, id: string): VmPaths {
  const dir = join(runDir, id);
  return {
    dir,
    config: join(dir, 'config.json'),
    bootDisk: join(dir, 'boot.qcow2'),
    pidFile: join(dir, 'qemu.pid'),
    qmpSocket: join(dir, 'qmp.sock'),
    consoleSocket: join(dir, 'console.sock'),
    consoleLog: join(dir, 'console.log'),
    qemuLog: join(dir, 'qemu.log'),
    exitFile: join(dir, 'exit.json'),
    disk: (name) => join(dir, `disk-${name}.qcow2`),
  };
}
