import type { RulesetOptions } from './nft-ruleset.ts';

/** A ruleset exercising every rule feature: the input of the golden test and the syntax check against nft. */
export const richRuleset: RulesetOptions = {
  networks: [
    { bridge: 'crbr1', vxlan: 'crvx1', natSubnet: '10.0.0.0/24', dns: true },
    { bridge: 'crbr2', vxlan: 'crvx2' },
  ],
  sets: [
    { name: 'web', addresses: ['10.0.0.5', '10.0.0.6', 'fd00::5'] },
    { name: 'empty-one', addresses: [] },
  ],
  nics: [
    {
      tap: 'cr-tap.2',
      bridge: 'crbr2',
      mac: '52:54:00:00:00:02',
      ipv4: [],
      ipv6: [],
      rules: [],
      router: true,
    },
    {
      tap: 'crtap1',
      bridge: 'crbr1',
      mac: '52:54:00:AA:00:01',
      ipv4: ['10.0.0.5'],
      ipv6: ['fd00::5'],
      geekMode: true,
      rules: [
        { direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['80', '8000-8080'], remote: { cidrs: ['192.0.2.0/24', '2001:db8::/32'] } },
        { direction: 'ingress', action: 'accept', protocol: 'tcp', ports: ['5432'], remote: { set: 'web' }, logPrefix: 'crowd db: ' },
        { direction: 'ingress', action: 'accept', protocol: 'icmp', icmpTypes: [8], rateLimit: { rate: 10, per: 'second', unit: 'packets' } },
        { direction: 'ingress', action: 'accept', protocol: 'icmpv6', icmpTypes: [128, 129] },
        { direction: 'ingress', action: 'accept', protocol: 'udp', ports: ['53'], rateLimit: { rate: 5, per: 'minute', unit: 'connections' } },
        { direction: 'egress', action: 'reject', protocol: 'tcp', ports: ['25'] },
        { direction: 'egress', action: 'drop', remote: { cidrs: ['198.51.100.7'] }, rateLimit: { rate: 100, per: 'second', unit: 'packets' } },
        { direction: 'egress', action: 'accept', protocol: 'any', remote: { cidrs: ['10.0.0.0/8'], set: 'empty-one' } },
        { direction: 'egress', action: 'accept', protocol: 'udp', rateLimit: { rate: 1000, per: 'second', unit: 'packets' } },
        { direction: 'egress', action: 'reject' },
      ],
    },
  ],
};
