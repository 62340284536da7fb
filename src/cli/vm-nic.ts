import type { Command } from 'commander';
import type { VmNic, VmSpec, VmStatus } from '../api/kinds/vm.ts';
import { label, projectOf, projectOptions } from './command-options.ts';
import type { CliContext } from './context.ts';
import { intFlag } from './flags.ts';
import type { Flags } from './noun.ts';
import { UsageError } from './usage-error.ts';

/**
 * The NICs left after removing the one on `network` (or the `index`-th NIC),
 * or a usage error naming the choices. Later NICs on the same network get the
 * MAC they were `assigned` written down: the server matches NICs to what they
 * held by network, so only there could a shift hand one NIC another's MAC.
 */
export function removeNic(nics: VmNic[], vm: string, network: string | undefined, index: number | undefined, assigned: readonly { nic: number; mac: string }[] = []): VmNic[] {
  const at = nicToRemove(nics, vm, network, index);
  const gone = nics[at]!;
  return nics.flatMap((n, i) => {
    if (i === at) return [];
    const mac = i > at && n.network === gone.network && !n.mac ? assigned.find((a) => a.nic === i)?.mac : undefined;
    return [mac ? { ...n, mac } : n];
  });
}

function nicToRemove(nics: VmNic[], vm: string, network: string | undefined, index: number | undefined): number {
  if (index !== undefined) {
    const nic = nics[index];
    if (!nic || (network !== undefined && nic.network !== network)) throw new UsageError(`Cannot remove NIC ${index} of vm "${vm}": it has no such NIC${network ? ` on network "${network}"` : ''}`);
    return index;
  }
  if (network === undefined) throw new UsageError('Missing --network (or --index)');
  const on = nics.flatMap((n, i) => (n.network === network ? [i] : []));
  if (on.length === 0) throw new UsageError(`Cannot remove a NIC of vm "${vm}": it has none on network "${network}"`);
  if (on.length > 1) throw new UsageError(`Cannot remove a NIC of vm "${vm}": it has ${on.length} on network "${network}" (NICs ${on.join(', ')}); pick one with --index`);
  return on[0]!;
}

/**
 * `crowd vm nic add|remove NAME`: edits the VM's NIC list (with If-Match, so
 * a concurrent edit is never lost). The server assigns MAC and addresses; the
 * agent hot-plugs the NIC when the VM runs, else plugs it in at the next start.
 */
export function vmNicCommands(parseNic: (text: string) => VmNic): (cmd: Command, ctx: CliContext) => void {
  return (cmd, ctx) => addCommands(cmd, ctx, parseNic);
}

function addCommands(cmd: Command, ctx: CliContext, parseNic: (text: string) => VmNic): void {
  const nic = cmd.command('nic').description('add or remove network interfaces of a VM');
  const add = nic
    .command('add')
    .description('add a NIC (hot-plugged when the VM runs, else at its next start)')
    .argument('<name>', 'VM name or id')
    .requiredOption('--network <nic>', 'NAME[,ipv4=ADDR|dhcp][,ipv6=ADDR|auto][,mac=MAC][,firewall=NAME]')
    .option('--reason <text>', 'why, kept in the history');
  projectOptions(add, true).action(async (name: string, flags: Flags) => {
    const parsed = parseNic(flags.network as string);
    await edit(ctx, name, flags, (nics) => [...nics, parsed]);
    ctx.print(`${label('vm', name)}: NIC on network "${parsed.network}" added (hot-plugged when the VM runs, else at its next start)`);
  });
  const remove = nic
    .command('remove')
    .alias('rm')
    .description('remove a NIC (hot-unplugged when the VM runs, else at its next start)')
    .argument('<name>', 'VM name or id')
    .option('--network <name>', 'the network of the NIC to remove')
    .option('--index <n>', 'the position of the NIC to remove (0 is the first)', intFlag)
    .option('--reason <text>', 'why, kept in the history');
  projectOptions(remove, true).action(async (name: string, flags: Flags) => {
    await edit(ctx, name, flags, (nics, status) => removeNic(nics, name, flags.network as string | undefined, flags.index as number | undefined, status.addresses));
    ctx.print(`${label('vm', name)}: NIC removed (hot-unplugged when the VM runs, else at its next start)`);
  });
}

async function edit(ctx: CliContext, name: string, flags: Flags, change: (nics: VmNic[], status: VmStatus) => VmNic[]): Promise<void> {
  const vms = ctx.client().vms;
  const project = projectOf(flags);
  const vm = await vms.get(name, { project });
  const spec = vm.spec as VmSpec;
  const nics = change(spec.nics ?? [], vm.status as VmStatus);
  await vms.update(vm.name, { labels: vm.labels, metadata: vm.metadata, spec: { ...spec, nics } }, { project, ifMatch: vm.revision, reason: flags.reason as string | undefined });
}
