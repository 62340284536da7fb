import { Option, type Command } from 'commander';
import type { VmNic } from '../../api/kinds/vm.ts';
import { choiceFlag, collect, intFlag, keyValueFlag, mebibytesFlag } from '../flags.ts';
import { at, defined, need, type Flags, type Noun } from '../noun.ts';
import { UsageError } from '../usage-error.ts';
import { addVmActionCommands } from '../vm-actions.ts';
import { vmNicCommands } from '../vm-nic.ts';

/** `--network NAME[,ipv4=…][,ipv6=…][,mac=…][,firewall=…]…` as one NIC. */
export function parseNic(text: string): VmNic {
  const [network, ...rest] = text.split(',');
  if (!network) throw new UsageError(`Invalid --network "${text}": expected NAME[,ipv4=ADDR|dhcp][,ipv6=ADDR|auto][,mac=MAC][,firewall=NAME]`);
  const nic: VmNic = { network };
  for (const part of rest) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (eq <= 0 || !value) throw new UsageError(`Invalid --network "${text}": "${part}" is not key=value`);
    if (key === 'ipv4' || key === 'ipv6' || key === 'mac') nic[key] = value;
    else if (key === 'firewall') nic.firewalls = [...(nic.firewalls ?? []), value];
    else throw new UsageError(`Invalid --network "${text}": unknown key "${key}" (expected ipv4, ipv6, mac or firewall)`);
  }
  return nic;
}

/** Virtual machines: image, machine type with overrides, NICs, power and placement. */
export const vmNoun: Noun = {
  kind: 'vm',
  summary: 'virtual machines',
  columns: [
    { header: 'IMAGE', value: (o) => at(o, 'spec', 'image') },
    { header: 'TYPE', value: (o) => at(o, 'spec', 'machineType') },
    { header: 'PHASE', value: (o) => at(o, 'status', 'phase') },
    { header: 'NODE', value: (o) => at(o, 'status', 'node') },
  ],
  addCreateFlags(cmd: Command) {
    cmd
      .option('--image <name>', 'image to boot')
      .option('--machine-type <name>', 'machine type (size and allowed overrides)')
      .option('--network <nic>', 'a NIC: NAME[,ipv4=ADDR|dhcp][,ipv6=ADDR|auto][,mac=MAC][,firewall=NAME] (repeatable)', collect)
      .option('--cpus <n>', 'override the machine type\'s CPUs', intFlag)
      .option('--memory <size>', 'override the machine type\'s memory, in MiB or with a unit (4GiB)', mebibytesFlag)
      .option('--disk <GiB>', 'override the machine type\'s root disk size', intFlag)
      .addOption(new Option('--power <state>', 'running or stopped').argParser(choiceFlag(['running', 'stopped'] as const)))
      .option('--ssh-key <key>', 'an authorized SSH public key (repeatable)', collect)
      .option('--param <name=value>', 'a public OS parameter (repeatable)', keyValueFlag)
      .option('--private-param <name=value>', 'a private OS parameter: stored, shown to no one but the VM (repeatable)', keyValueFlag)
      .option('--secret-param <name=value>', 'a secret OS parameter: never stored, delivered once to the VM\'s host (repeatable)', keyValueFlag)
      .option('--node <name>', 'place on this node')
      .option('--site <name>', 'place at this site');
  },
  spec(flags: Flags) {
    return defined({
      image: need<string>(flags, 'image', '--image'),
      machineType: need<string>(flags, 'machineType', '--machine-type'),
      resources: { cpus: flags.cpus, memoryMiB: flags.memory, diskGiB: flags.disk },
      nics: (flags.network as string[] | undefined)?.map(parseNic),
      power: flags.power,
      sshKeys: flags.sshKey,
      placement: { node: flags.node, site: flags.site },
      install: flags.param || flags.privateParam ? { mode: 'run', parameters: flags.param, privateParameters: flags.privateParam } : undefined,
    });
  },
  writeOnly(flags: Flags) {
    return flags.secretParam ? { secretParameters: flags.secretParam } : {};
  },
  addCommands(cmd, ctx) {
    vmNicCommands(parseNic)(cmd, ctx);
    addVmActionCommands(cmd, ctx);
  },
};
