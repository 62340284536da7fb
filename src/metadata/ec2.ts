import { networkCidr } from './address-prefix.ts';
import { addTree, jsonDoc, textDoc, type Documents, type TreeNode } from './documents.ts';
import { sshKeyNames, type GuestInfo, type GuestNic } from './guest-info.ts';

/**
 * EC2 API versions the service answers to, oldest first; every one serves
 * the same tree. cloud-init off AWS probes 2021-03-23, 2018-09-24,
 * 2016-09-02 and 2009-04-04 (its minimum).
 */
export const ec2Versions = [
  '1.0',
  '2007-01-19',
  '2007-03-01',
  '2007-08-29',
  '2007-10-10',
  '2007-12-15',
  '2008-02-01',
  '2008-09-01',
  '2009-04-04',
  '2011-01-01',
  '2011-05-01',
  '2012-01-12',
  '2014-02-25',
  '2014-11-05',
  '2015-10-20',
  '2016-04-19',
  '2016-06-30',
  '2016-09-02',
  '2018-03-28',
  '2018-08-17',
  '2018-09-24',
  '2019-10-01',
  '2020-10-27',
  '2021-01-03',
  '2021-03-23',
  '2021-07-15',
  '2022-09-24',
  '2024-04-11',
  'latest',
] as const;

function macDir(nic: GuestNic, index: number, guest: GuestInfo): TreeNode {
  const dir: { [k: string]: TreeNode } = {
    'device-number': String(index),
    'interface-id': `eni-${index}`,
    'local-hostname': guest.hostname,
    mac: nic.mac.toLowerCase(),
  };
  if (nic.ipv4) {
    dir['local-ipv4s'] = nic.ipv4.address;
    dir['subnet-ipv4-cidr-block'] = networkCidr(nic.ipv4.address, nic.ipv4.prefixLength);
  }
  if (nic.ipv6) {
    dir.ipv6s = nic.ipv6.address;
    dir['subnet-ipv6-cidr-blocks'] = networkCidr(nic.ipv6.address, nic.ipv6.prefixLength);
  }
  return dir;
}

/** The `meta-data/` tree of one guest. Only public facts: never OS parameters, which cloud-init would copy into world-readable files. */
export function ec2MetaData(guest: GuestInfo): TreeNode {
  const first = guest.nics[0];
  const tree: { [k: string]: TreeNode } = {
    'ami-id': guest.imageId,
    'ami-launch-index': String(guest.launchIndex),
    hostname: guest.hostname,
    'instance-id': guest.instanceId,
    'instance-type': guest.instanceType,
    'local-hostname': guest.hostname,
    placement: { 'availability-zone': guest.availabilityZone, region: guest.region },
  };
  if (first) {
    tree.mac = first.mac.toLowerCase();
    if (first.ipv4) tree['local-ipv4'] = first.ipv4.address;
    const macs = Object.fromEntries(guest.nics.map((nic, i) => [nic.mac.toLowerCase(), macDir(nic, i, guest)]));
    tree.network = { interfaces: { macs } };
  }
  if (guest.sshKeys.length > 0) {
    const names = sshKeyNames(guest.sshKeys);
    tree['public-keys'] = Object.fromEntries(guest.sshKeys.map((key, i) => [`${i}=${names[i]}`, { 'openssh-key': key }]));
  }
  return tree;
}

/** The instance identity document (`dynamic/instance-identity/document`); cloud-init reads region and zone from it. */
export function ec2IdentityDocument(guest: GuestInfo): Record<string, unknown> {
  return {
    accountId: guest.project,
    architecture: 'x86_64',
    availabilityZone: guest.availabilityZone,
    imageId: guest.imageId,
    instanceId: guest.instanceId,
    instanceType: guest.instanceType,
    privateIp: guest.nics[0]?.ipv4?.address ?? null,
    region: guest.region,
    version: '2017-09-30',
  };
}

/** Adds the EC2 namespace of one guest under `latest/` (every version is folded to it) and the root version list under ``. */
export function addEc2Documents(out: Documents, guest: GuestInfo): void {
  out.set('', textDoc(ec2Versions.join('\n')));
  const top: string[] = ['dynamic/', 'meta-data/'];
  if (guest.userData !== undefined) {
    top.push('user-data');
    out.set('latest/user-data', textDoc(guest.userData));
  }
  out.set('latest', textDoc(top.join('\n')));
  addTree(out, 'latest/meta-data', ec2MetaData(guest));
  out.set('latest/dynamic', textDoc('instance-identity/'));
  out.set('latest/dynamic/instance-identity', textDoc('document'));
  out.set('latest/dynamic/instance-identity/document', jsonDoc(ec2IdentityDocument(guest)));
}
