import type { Command } from 'commander';
import { choiceFlag, intFlag } from '../flags.ts';
import { at, defined, type Flags, type Noun } from '../noun.ts';

/** Images: the disks VMs boot from, with their architecture, OS and expected hash. */
export const imageNoun: Noun = {
  kind: 'image',
  summary: 'disk images VMs boot from',
  columns: [
    { header: 'OS', value: (o) => at(o, 'spec', 'os') },
    { header: 'ARCH', value: (o) => at(o, 'spec', 'arch') },
    { header: 'PHASE', value: (o) => at(o, 'status', 'phase') },
  ],
  addCreateFlags(cmd: Command) {
    cmd
      .option('--arch <arch>', 'x86_64 or aarch64', choiceFlag(['x86_64', 'aarch64'] as const))
      .option('--os <name>', 'operating system, e.g. debian-12')
      .option('--min-disk <GiB>', 'smallest root disk it fits on', intFlag)
      .option('--cloud-init', 'the image runs cloud-init')
      .option('--sha256 <hex>', 'expected content hash')
      .option('--deprecated', 'hide from new VMs');
  },
  spec(flags: Flags) {
    return defined({
      arch: flags.arch,
      os: flags.os,
      minDiskGiB: flags.minDisk,
      cloudInit: flags.cloudInit,
      sha256: flags.sha256,
      deprecated: flags.deprecated,
    });
  },
};
