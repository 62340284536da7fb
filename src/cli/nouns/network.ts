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

/** Networks: an IPv4 subnet with gateway and DHCP range, an IPv6 prefix, MTU and firewalls. */
export const networkNoun: Noun = {
  kind: 'network',
  summary: 'virtual networks',
  columns: [
    { header: 'SUBNET', value: (o) => at(o, 'spec', 'ipv4', 'subnet') },
    { header: 'IPV6', value: (o) => at(o, 'spec', 'ipv6', 'prefix') },
    { header: 'VNI', value: (o) => at(o, 'spec', 'vni') },
  ],
  addCreateFlags(cmd: Command) {
    cmd
      .option('--subnet <cidr>', 'IPv4 subnet, e.g. 10.0.0.0/24')
      .option('--gateway <address>', 'IPv4 gateway address inside the subnet')
      .option('--dhcp-range <start-end>', 'IPv4 DHCP pool, e.g. 10.0.0.100-10.0.0.200')
      .option('--dns <address>', 'IPv4 DNS server (repeatable)', collect)
      .option('--ipv6-prefix <cidr>', 'IPv6 prefix, /64 for slaac')
      .option('--ipv6-mode <mode>', 'slaac (default), dhcpv6 or static', choiceFlag(['slaac', 'dhcpv6', 'static'] as const))
      .option('--mtu <bytes>', 'MTU', intFlag)
      .option('--firewall <name>', 'firewall applied to every NIC (repeatable)', collect)
      .option('--vni <n>', 'VXLAN id (assigned when absent)', intFlag);
  },
  spec(flags: Flags) {
    if (flags.subnet === undefined && (flags.gateway || flags.dhcpRange || flags.dns))
      throw new UsageError('Missing --subnet: --gateway, --dhcp-range and --dns need it');
    return defined({
      mtu: flags.mtu,
      ipv4:
        flags.subnet === undefined
          ? undefined
          : { subnet: flags.subnet, gateway: flags.gateway, dns: flags.dns, dhcp: dhcpRange(flags.dhcpRange as string | undefined) },
      ipv6: flags.ipv6Prefix === undefined ? undefined : { mode: flags.ipv6Mode ?? 'slaac', prefix: flags.ipv6Prefix },
      firewalls: flags.firewall,
      vni: flags.vni,
    });
  },
};
