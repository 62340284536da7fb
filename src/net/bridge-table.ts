import { ipv6Hex } from './ip-address.ts';
import type { NftObject, NftTable } from './nft-model.ts';

/** A tap as anti-spoofing sees it: addresses already checked and normalized. */
export interface GuardedTap {
  tap: string;
  mac: string;
  v4: string[];
  /** Link-local first, then the assigned IPv6 addresses. */
  v6: string[];
  router?: boolean;
}

/** Where guests find the metadata service (served by their own host only). */
export const metadataIpv4 = '169.254.169.254';
export const metadataIpv6 = 'fe80::a9fe:a9fe';

const q = (s: string) => `"${s}"`;
const set = (name: string, head: string, items: string[]): NftObject => ({ kind: 'set', name, head, items: [...items].sort() });
const chain = (name: string, head: string, items: string[]): NftObject => ({ kind: 'chain', name, head, items });

/**
 * Pure: `table bridge crowd` — anti-spoofing for every tap in one chain that
 * looks its frames up in sets keyed by (tap . MAC), (tap . address), … before
 * anything else sees them (MAC, ARP, source IPs, neighbour advertisements; no
 * DHCP server replies or RAs from guests; a router tap keeps only the MAC
 * checks); the metadata addresses never bridged; host frames never sent to
 * or taken from the VXLAN ports (DHCP, RA and gateway stay host-local).
 */
export function bridgeTable(taps: GuardedTap[], vxlans: string[]): NftTable {
  const guarded = taps.filter((t) => !t.router);
  const each = (ts: GuardedTap[], f: (t: GuardedTap) => string[]) => ts.flatMap((t) => f(t).map((x) => `${q(t.tap)} . ${x}`));
  return {
    family: 'bridge',
    name: 'crowd',
    objects: [
      set('vxlans', 'type ifname;', vxlans.map(q)),
      set('taps', 'type ifname;', taps.map((t) => q(t.tap))),
      set('routers', 'type ifname;', taps.filter((t) => t.router).map((t) => q(t.tap))),
      set('ipv4_taps', 'type ifname;', guarded.filter((t) => t.v4.length).map((t) => q(t.tap))),
      set('macs', 'type ifname . ether_addr;', each(taps, (t) => [t.mac])),
      set('ipv4', 'type ifname . ipv4_addr;', each(guarded, (t) => t.v4)),
      set('ipv6', 'type ifname . ipv6_addr;', each(guarded, (t) => t.v6)),
      // Neighbour advertisements: the target address (at bit 384) and the target MAC option (bit 528) must be the tap's own.
      set('nd_targets', 'typeof iifname . @nh,384,128;', each(guarded, (t) => t.v6.map(ipv6Hex))),
      set('nd_macs', 'typeof iifname . @nh,528,48;', each(guarded, (t) => [`0x${t.mac.replace(/:/g, '')}`])),
      chain('prerouting', 'type filter hook prerouting priority -300; policy accept;', ['iifname @taps jump spoof']),
      chain('forward', 'type filter hook forward priority -300; policy accept;', [
        `ether type ip ip daddr ${metadataIpv4} drop`,
        `ether type ip6 ip6 daddr ${metadataIpv6} drop`,
      ]),
      chain('input', 'type filter hook input priority -300; policy accept;', ['iifname @vxlans drop']),
      chain('output', 'type filter hook output priority -300; policy accept;', ['oifname @vxlans drop']),
      chain('spoof', '', [
        'iifname . ether saddr != @macs drop',
        'ether type arp iifname . arp saddr ether != @macs drop',
        'ether type ip udp sport 67 drop',
        'ether type ip6 udp sport 547 drop',
        'ether type != { arp, ip, ip6 } drop',
        'iifname @routers return',
        'ether type { arp, ip } iifname != @ipv4_taps drop',
        'ether type arp arp saddr ip 0.0.0.0 return',
        'ether type arp iifname . arp saddr ip != @ipv4 drop',
        'ether type ip ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 return',
        'ether type ip iifname . ip saddr != @ipv4 drop',
        'ether type ip6 ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld-listener-report, mld2-listener-report } return',
        'ether type ip6 iifname . ip6 saddr != @ipv6 drop',
        'ether type ip6 icmpv6 type nd-neighbor-advert iifname . @nh,384,128 != @nd_targets drop',
        'ether type ip6 icmpv6 type nd-neighbor-advert iifname . @nh,528,48 != @nd_macs drop',
        'ether type ip6 icmpv6 type { nd-router-advert, nd-redirect } drop',
      ]),
    ],
  };
}
