import type { Command } from 'commander';
import { choiceFlag, intFlag, mebibytesFlag } from '../flags.ts';
import { at, defined, need, type Flags, type Noun } from '../noun.ts';

/** Nodes: hosts that run VMs, with their site, architecture and capacity. */
export const nodeNoun: Noun = {
  kind: 'node',
  summary: 'hosts that run VMs',
  columns: [
    { header: 'SITE', value: (o) => at(o, 'spec', 'site') },
    { header: 'PHASE', value: (o) => at(o, 'status', 'phase') },
    { header: 'CPUS', value: (o) => at(o, 'spec', 'capacity', 'cpus') },
    { header: 'MEMORY_MIB', value: (o) => at(o, 'spec', 'capacity', 'memoryMiB') },
  ],
  addCreateFlags(cmd: Command) {
    cmd
      .option('--site <name>', 'site the node is at')
      .option('--arch <arch>', 'x86_64 (default) or aarch64', choiceFlag(['x86_64', 'aarch64'] as const))
      .option('--cpus <n>', 'CPUs available to VMs', intFlag)
      .option('--memory <size>', 'memory available to VMs, in MiB or with a unit (64GiB)', mebibytesFlag)
      .option('--disk <GiB>', 'disk available to VMs', intFlag)
      .option('--unschedulable', 'place no new VMs here');
  },
  spec(flags: Flags) {
    return defined({
      site: need<string>(flags, 'site', '--site'),
      arch: flags.arch ?? 'x86_64',
      capacity: {
        cpus: need<number>(flags, 'cpus', '--cpus'),
        memoryMiB: need<number>(flags, 'memory', '--memory'),
        diskGiB: need<number>(flags, 'disk', '--disk'),
      },
      unschedulable: flags.unschedulable,
    });
  },
};
