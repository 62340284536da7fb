import { Type, type Static } from '@sinclair/typebox';
import type { ErrorDetail } from '../errors.ts';
import type { KindDef, Reference } from '../kind.ts';
import { DnsLabel, createSchema, objectSchema, updateSchema } from '../object.ts';
import { parseIp, parsePrefix } from '../ip.ts';

const PortRange = Type.String({ pattern: '^[0-9]{1,5}(-[0-9]{1,5})?$', description: '"22" or "8000-8080"' });
const Cidr = Type.String({ maxLength: 49, description: 'an IPv4 or IPv6 CIDR, or a single address' });

export const FirewallRule = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 256 })),
    direction: Type.Union([Type.Literal('ingress'), Type.Literal('egress')]),
    action: Type.Union([Type.Literal('accept'), Type.Literal('drop'), Type.Literal('reject')]),
    protocol: Type.Optional(
      Type.Union([Type.Literal('any'), Type.Literal('tcp'), Type.Literal('udp'), Type.Literal('icmp'), Type.Literal('icmpv6')]),
    ),
    ports: Type.Optional(Type.Array(PortRange, { maxItems: 64 })),
    /** The other side of the connection: CIDRs, or the members of another firewall. */
    remote: Type.Optional(
      Type.Object(
        {
          cidrs: Type.Optional(Type.Array(Cidr, { maxItems: 256 })),
          firewall: Type.Optional(DnsLabel),
        },
        { additionalProperties: false },
      ),
    ),
    icmpTypes: Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: 255 }), { maxItems: 32 })),
    log: Type.Optional(Type.Boolean()),
    rateLimit: Type.Optional(
      Type.Object(
        {
          rate: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
          per: Type.Union([Type.Literal('second'), Type.Literal('minute')]),
          unit: Type.Union([Type.Literal('packets'), Type.Literal('connections')]),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type FirewallRule = Static<typeof FirewallRule>;

export const FirewallSpec = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    rules: Type.Array(FirewallRule, { maxItems: 256 }),
    /** One flag for "allow SSH from anywhere". */
    geekMode: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type FirewallSpec = Static<typeof FirewallSpec>;
export const FirewallStatus = Type.Object({}, { additionalProperties: true });
export const Firewall = objectSchema('firewall', FirewallSpec, FirewallStatus);
export type Firewall = Static<typeof Firewall>;
export const FirewallCreate = createSchema('firewall', FirewallSpec);
export type FirewallCreate = Static<typeof FirewallCreate>;

function checkFirewall(raw: Record<string, unknown>): ErrorDetail[] {
  const spec = raw as FirewallSpec;
  const out: ErrorDetail[] = [];
  spec.rules.forEach((rule, i) => {
    const at = `/spec/rules/${i}`;
    const proto = rule.protocol ?? 'any';
    if (rule.ports?.length && proto !== 'tcp' && proto !== 'udp')
      out.push({ path: `${at}/ports`, message: `ports need protocol tcp or udp, not "${proto}"` });
    rule.ports?.forEach((p, j) => {
      const [lo, hi = lo] = p.split('-').map(Number) as [number, number?];
      if (lo < 1 || hi! > 65535 || lo > hi!) out.push({ path: `${at}/ports/${j}`, message: `"${p}" is not a port or range within 1-65535` });
    });
    if (rule.icmpTypes?.length && proto !== 'icmp' && proto !== 'icmpv6')
      out.push({ path: `${at}/icmpTypes`, message: `ICMP types need protocol icmp or icmpv6, not "${proto}"` });
    rule.remote?.cidrs?.forEach((c, j) => {
      if (!parsePrefix(c) && !parseIp(c)) out.push({ path: `${at}/remote/cidrs/${j}`, message: `"${c}" is not a CIDR or address` });
    });
    if (rule.remote && !rule.remote.cidrs && !rule.remote.firewall)
      out.push({ path: `${at}/remote`, message: 'remote needs cidrs or a firewall' });
  });
  return out;
}

export const firewallKind: KindDef = {
  kind: 'firewall',
  plural: 'firewalls',
  idPrefix: 'fw',
  scope: 'project',
  spec: FirewallSpec,
  status: FirewallStatus,
  read: Firewall,
  create: FirewallCreate,
  update: updateSchema('firewall', FirewallSpec),
  references: (raw) =>
    (raw as FirewallSpec).rules.flatMap((r, i): Reference[] =>
      r.remote?.firewall ? [{ kind: 'firewall', name: r.remote.firewall, path: `/spec/rules/${i}/remote/firewall` }] : [],
    ),
  checkSpec: checkFirewall,
};
