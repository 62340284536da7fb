import { createHash } from 'node:crypto';

/** One IPv4 address of a guest NIC; `dhcp` says whether the guest should ask DHCP for it (the net layer pins it either way). */
export interface GuestIpv4 {
  address: string;
  prefixLength: number;
  gateway?: string;
  dhcp?: boolean;
}

/** One IPv6 address of a guest NIC; `slaac` says whether the guest should autoconfigure it from router advertisements. */
export interface GuestIpv6 {
  address: string;
  prefixLength: number;
  gateway?: string;
  slaac?: boolean;
}

/** A guest NIC as the host pinned it: MAC and addresses come from the agent, never from the guest. */
export interface GuestNic {
  mac: string;
  ipv4?: GuestIpv4;
  ipv6?: GuestIpv6;
  dns?: string[];
  mtu?: number;
}

/**
 * Everything the metadata service tells one guest. The agent builds it from
 * the VM spec and the addresses it pinned; the service renders every document
 * from it once, so the agent hands a new object when anything changes.
 */
export interface GuestInfo {
  /** The VM's object id, e.g. `vm_01J…`; EC2 instance-id. */
  instanceId: string;
  name: string;
  hostname: string;
  project: string;
  region: string;
  availabilityZone: string;
  instanceType: string;
  imageId: string;
  nics: GuestNic[];
  /** OpenSSH public keys, one line each. */
  sshKeys: string[];
  userData?: string;
  /** cloud-config (or any cloud-init vendor data) of the operator. */
  vendorData?: string;
  /** OS parameters by visibility; private and secret ones only ever go to /crowd/v1/os/parameters. */
  parameters: { public: Record<string, string>; private: Record<string, string>; secret: Record<string, string> };
  launchIndex: number;
  /** IMDSv2 `required`: token-less GETs get 401. */
  imdsTokenRequired: boolean;
}

/**
 * The UUID a guest sees as its SMBIOS system UUID and OpenStack `uuid`: a
 * name-based (SHA-1, version 5 layout) UUID of the instance id, so both agree
 * and cloud-init can match its cached instance-id against the DMI UUID offline.
 */
export function guestUuid(instanceId: string): string {
  const h = createHash('sha1').update(`crowdcloud:${instanceId}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Names for the guest's SSH keys (EC2 `0=name`, OpenStack `public_keys`): the key's comment when it is a safe word, else `key-<i>`; always unique. */
export function sshKeyNames(keys: string[]): string[] {
  const seen = new Set<string>();
  return keys.map((key, i) => {
    const comment = key.trim().split(/\s+/)[2] ?? '';
    let name = /^[A-Za-z0-9._@-]{1,64}$/.test(comment) && !seen.has(comment) ? comment : `key-${i}`;
    while (seen.has(name)) name = `${name}-${i}`;
    seen.add(name);
    return name;
  });
}
