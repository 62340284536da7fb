import type { Command } from 'commander';
import { choiceFlag, collect, intFlag } from '../flags.ts';
import { at, defined, type Flags, type Noun } from '../noun.ts';
import { UsageError } from '../usage-error.ts';

function dhcpRange(text: string | undefined): { start: string; end: string } | undefined {
  if (text === undefined) return undefined;
  const [start, end, extra] = text.split('-');
  if (!start || !end || extra !== undefined) throw new UsageError(`Invalid --dhcp-range "${text}": expected START-END, e.g. 10.0.0.100-10.0.0.200`);
  return { start, end };
}

/** Networks: an IPv4 subnet with gateway and DHCP range, an IPv6 prefix, gateway mode, MTU and firewalls. */
export const networkNoun: Noun = {
  kind: 'network',
  summary: 'virtual networks',
  columns: [
    { header: 'SUBNET', value: (o) => at(o, 'spec', 'ipv4', 'subnet') },
    { header: 'IPV6', value: (o) => at(o, 'spec', 'ipv6', 'prefix') },
    { header: 'GATEWAY', value: (o) => at(o, 'spec', 'gateway', 'mode') ?? (at(o, 'spec', 'ipv4') ? 'host' : undefined) },
    { header: 'VNI', value: (o) => at(o, 'spec', 'vni') ?? at(o, 'status', 'vni') },
  ],
  addCreateFlags(cmd: Command) {
    cmd
      .option('--subnet <cidr>', 'IPv4 subnet, e.g. 10.0.0.0/24')
      .option('--gateway <address>', 'IPv4 gateway address inside the subnet')
      .option('--gateway-mode <mode>', 'host (routes and NATs, default), vm (a VM on the network routes) or none (isolated)', choiceFlag(['host', 'vm', 'none'] as const))
      .option('--gateway-vm <name>', 'the VM that routes, with --gateway-mode vm')
      .option('--dhcp-range <start-end>', 'IPv4 DHCP pool, e.g. 10.0.0.100-10.0.0.200')
      .option('--dns <address>', 'IPv4 DNS server (repeatable)', collect)
      .option('--ipv6-prefix <cidr>', 'IPv6 prefix, /64 for slaac')
      .option('--ipv6-mode <mode>', 'slaac (default), dhcpv6 or static', choiceFlag(['slaac', 'dhcpv6', 'static'] as const))
      .option('--ipv6-gateway <address>', 'IPv6 gateway address inside the prefix')
      .option('--mtu <bytes>', 'MTU', intFlag)
      .option('--firewall <name>', 'firewall applied to every NIC (repeatable)', collect)
      .option('--vni <n>', 'VXLAN id (assigned when absent)', intFlag);
  },
  spec(flags: Flags) {
    if (flags.subnet === undefined && (flags.gateway || flags.dhcpRange || flags.dns))
      throw new UsageError('Missing --subnet: --gateway, --dhcp-range and --dns need it');
    if (flags.gatewayVm !== undefined && flags.gatewayMode !== 'vm') throw new UsageError('Invalid --gateway-vm: it needs --gateway-mode vm');
    if (flags.gatewayMode === 'vm' && flags.gatewayVm === undefined) throw new UsageError('Missing --gateway-vm: --gateway-mode vm needs the name of the routing VM');
    return defined({
      mtu: flags.mtu,
      gateway: { mode: flags.gatewayMode, vm: flags.gatewayVm },
      ipv4:
        flags.subnet === undefined
          ? undefined
          : { subnet: flags.subnet, gateway: flags.gateway, dns: flags.dns, dhcp: dhcpRange(flags.dhcpRange as string | undefined) },
      ipv6: flags.ipv6Prefix === undefined ? undefined : { mode: flags.ipv6Mode ?? 'slaac', prefix: flags.ipv6Prefix, gateway: flags.ipv6Gateway },
      firewalls: flags.firewall,
      vni: flags.vni,
    });
  },
};
