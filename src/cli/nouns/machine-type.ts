import type { Command } from 'commander';
import { resourceNames, type ResourceName } from '../../api/kinds/machine-type.ts';
import { collect, intFlag, mebibytesFlag, parseRange } from '../flags.ts';
import { at, defined, need, type Flags, type Noun } from '../noun.ts';
import { UsageError } from '../usage-error.ts';

/** `--range cpus=1-8` entries as the spec's `ranges`. */
function ranges(texts: string[] | undefined): Partial<Record<ResourceName, { min: number; max: number }>> | undefined {
  if (!texts) return undefined;
  const out: Partial<Record<ResourceName, { min: number; max: number }>> = {};
  for (const text of texts) {
    const [name, range] = text.split('=');
    if (!resourceNames.includes(name as ResourceName) || range === undefined)
      throw new UsageError(`Invalid --range "${text}": expected ${resourceNames.join('|')}=MIN-MAX, e.g. cpus=1-8`);
    out[name as ResourceName] = parseRange(range);
  }
  return out;
}

/** Machine types: default size of a VM and how far a VM may override it. */
export const machineTypeNoun: Noun = {
  kind: 'machine-type',
  summary: 'VM sizes and the overrides they allow',
  columns: [
    { header: 'CPUS', value: (o) => at(o, 'spec', 'cpus') },
    { header: 'MEMORY_MIB', value: (o) => at(o, 'spec', 'memoryMiB') },
    { header: 'DISK_GIB', value: (o) => at(o, 'spec', 'diskGiB') },
  ],
  addCreateFlags(cmd: Command) {
    cmd
      .option('--cpus <n>', 'default CPUs', intFlag)
      .option('--memory <size>', 'default memory, in MiB or with a unit (4GiB)', mebibytesFlag)
      .option('--disk <GiB>', 'default root disk size', intFlag)
      .option('--range <name=min-max>', 'allowed override range, e.g. cpus=1-8 (repeatable)', collect)
      .option('--description <text>', 'what it is for');
  },
  spec(flags: Flags) {
    return defined({
      cpus: need<number>(flags, 'cpus', '--cpus'),
      memoryMiB: need<number>(flags, 'memory', '--memory'),
      diskGiB: need<number>(flags, 'disk', '--disk'),
      ranges: ranges(flags.range as string[] | undefined),
      description: flags.description,
    });
  },
};
