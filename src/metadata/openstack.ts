import { netmask } from './address-prefix.ts';
import { jsonDoc, textDoc, type Documents } from './documents.ts';
import { guestUuid, sshKeyNames, type GuestInfo } from './guest-info.ts';

/** OpenStack metadata versions served, oldest first (cloud-init picks the newest it knows, 2018-08-27). */
export const openstackVersions = [
  '2012-08-10',
  '2013-04-04',
  '2013-10-17',
  '2015-10-15',
  '2016-06-30',
  '2016-10-06',
  '2017-02-22',
  '2018-08-27',
  'latest',
] as const;

/**
 * `meta_data.json`: identity, keys and the public OS parameters as `meta`.
 * Private and secret parameters never go here: cloud-init copies this file
 * into world-readable instance data.
 */
export function openstackMetaData(guest: GuestInfo): Record<string, unknown> {
  const names = sshKeyNames(guest.sshKeys);
  return {
    uuid: guestUuid(guest.instanceId),
    name: guest.name,
    hostname: guest.hostname,
    public_keys: Object.fromEntries(guest.sshKeys.map((key, i) => [names[i], key])),
    keys: guest.sshKeys.map((key, i) => ({ name: names[i], type: 'ssh', data: key })),
    meta: { ...guest.parameters.public, crowd_instance_id: guest.instanceId },
    availability_zone: guest.availabilityZone,
    launch_index: guest.launchIndex,
    project_id: guest.project,
    devices: [],
  };
}

/** `network_data.json`: one link per NIC (by MAC), its IPv4/IPv6 networks with routes, and the DNS servers. */
export function openstackNetworkData(guest: GuestInfo): Record<string, unknown> {
  const links = guest.nics.map((nic, i) => ({
    id: `tap${i}`,
    type: 'phy',
    ethernet_mac_address: nic.mac.toLowerCase(),
    ...(nic.mtu ? { mtu: nic.mtu } : {}),
    vif_id: `${guest.instanceId}-${i}`,
  }));
  const networks: Record<string, unknown>[] = [];
  guest.nics.forEach((nic, i) => {
    const dns = (nic.dns ?? []).map((address) => ({ type: 'dns', address }));
    if (nic.ipv4) {
      const v4 = nic.ipv4;
      networks.push({
        id: `network${networks.length}`,
        type: v4.dhcp ? 'ipv4_dhcp' : 'ipv4',
        link: `tap${i}`,
        ip_address: v4.address,
        netmask: netmask(4, v4.prefixLength),
        routes: v4.gateway ? [{ network: '0.0.0.0', netmask: '0.0.0.0', gateway: v4.gateway }] : [],
        network_id: `nic${i}-ipv4`,
        services: dns.filter((d) => !d.address.includes(':')),
      });
    }
    if (nic.ipv6) {
      const v6 = nic.ipv6;
      networks.push({
        id: `network${networks.length}`,
        type: v6.slaac ? 'ipv6_slaac' : 'ipv6',
        link: `tap${i}`,
        ip_address: v6.address,
        netmask: netmask(6, v6.prefixLength),
        routes: v6.gateway ? [{ network: '::', netmask: '::', gateway: v6.gateway }] : [],
        network_id: `nic${i}-ipv6`,
        services: dns.filter((d) => d.address.includes(':')),
      });
    }
  });
  const servers = [...new Set(guest.nics.flatMap((nic) => nic.dns ?? []))];
  return { links, networks, services: servers.map((address) => ({ type: 'dns', address })) };
}

/**
 * `vendor_data2.json` carries the operator's cloud-config under `cloud-init`,
 * the key cloud-init reads; `vendor_data.json` stays `{}` so the same config
 * is not applied twice (cloud-init processes both).
 */
export function openstackVendorData2(guest: GuestInfo): Record<string, unknown> {
  return guest.vendorData === undefined ? {} : { 'cloud-init': guest.vendorData };
}

/** Adds `openstack`, `openstack/latest` (every version folded to it) and its files. */
export function addOpenstackDocuments(out: Documents, guest: GuestInfo): void {
  out.set('openstack', textDoc(openstackVersions.join('\n')));
  const files = ['meta_data.json', 'network_data.json', 'vendor_data.json', 'vendor_data2.json'];
  if (guest.userData !== undefined) {
    files.push('user_data');
    out.set('openstack/latest/user_data', textDoc(guest.userData));
  }
  out.set('openstack/latest', textDoc(files.sort().join('\n')));
  out.set('openstack/latest/meta_data.json', jsonDoc(openstackMetaData(guest)));
  out.set('openstack/latest/network_data.json', jsonDoc(openstackNetworkData(guest)));
  out.set('openstack/latest/vendor_data.json', jsonDoc({}));
  out.set('openstack/latest/vendor_data2.json', jsonDoc(openstackVendorData2(guest)));
}
