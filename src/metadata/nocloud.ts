import { stringify } from 'yaml';
import type { GuestInfo, GuestNic } from './guest-info.ts';

/** The three files of a NoCloud seed (`cidata`), as text. */
export interface NocloudSeed {
  'user-data': string;
  'meta-data': string;
  'network-config': string;
}

/** NoCloud `meta-data`: identity and SSH keys only, never OS parameters. */
export function nocloudMetaData(guest: GuestInfo): string {
  const md: Record<string, unknown> = { 'instance-id': guest.instanceId, 'local-hostname': guest.hostname };
  if (guest.sshKeys.length > 0) md['public-keys'] = guest.sshKeys;
  return stringify(md);
}

function ethernet(nic: GuestNic): Record<string, unknown> {
  const eth: Record<string, unknown> = { match: { macaddress: nic.mac.toLowerCase() } };
  const addresses: string[] = [];
  const routes: { to: string; via: string }[] = [];
  if (nic.ipv4?.dhcp) eth.dhcp4 = true;
  else if (nic.ipv4) {
    eth.dhcp4 = false;
    addresses.push(`${nic.ipv4.address}/${nic.ipv4.prefixLength}`);
    if (nic.ipv4.gateway) routes.push({ to: '0.0.0.0/0', via: nic.ipv4.gateway });
  }
  if (nic.ipv6?.slaac) eth['accept-ra'] = true;
  else if (nic.ipv6) {
    eth['accept-ra'] = false;
    addresses.push(`${nic.ipv6.address}/${nic.ipv6.prefixLength}`);
    if (nic.ipv6.gateway) routes.push({ to: '::/0', via: nic.ipv6.gateway });
  }
  if (addresses.length > 0) eth.addresses = addresses;
  if (routes.length > 0) eth.routes = routes;
  if (nic.dns && nic.dns.length > 0) eth.nameservers = { addresses: nic.dns };
  if (nic.mtu) eth.mtu = nic.mtu;
  return eth;
}

/** NoCloud `network-config`, version 2: one ethernet per NIC, matched by MAC (named nic0, nic1… in the config only; the guest keeps its own interface names). */
export function nocloudNetworkConfig(guest: GuestInfo): string {
  const ethernets = Object.fromEntries(guest.nics.map((nic, i) => [`nic${i}`, ethernet(nic)]));
  return stringify({ version: 2, ethernets });
}

/** The seed's files. User-data is passed through as is (an empty cloud-config when the VM has none). */
export function renderNocloudSeed(guest: GuestInfo): NocloudSeed {
  return {
    'user-data': guest.userData ?? '#cloud-config\n{}\n',
    'meta-data': nocloudMetaData(guest),
    'network-config': nocloudNetworkConfig(guest),
  };
}
