import { addCrowdDocuments } from './crowd.ts';
import type { Documents } from './documents.ts';
import { addEc2Documents, ec2Versions } from './ec2.ts';
import type { GuestInfo } from './guest-info.ts';
import { addOpenstackDocuments, openstackVersions } from './openstack.ts';

const ec2VersionSet = new Set<string>(ec2Versions);
const openstackVersionSet = new Set<string>(openstackVersions);

/** Every document one guest can read, rendered once (EC2, OpenStack, crowdcloud). */
export function renderGuestDocuments(guest: GuestInfo): Documents {
  const out: Documents = new Map();
  addEc2Documents(out, guest);
  addOpenstackDocuments(out, guest);
  addCrowdDocuments(out, guest);
  return out;
}

/**
 * The canonical key of a request path's segments: EC2 and OpenStack
 * versions fold to `latest`; undefined for an unknown version.
 */
export function documentKey(segments: string[]): string | undefined {
  const [first, second, ...rest] = segments;
  if (first === undefined) return '';
  if (first === 'openstack') {
    if (second === undefined) return 'openstack';
    return openstackVersionSet.has(second) ? ['openstack', 'latest', ...rest].join('/') : undefined;
  }
  if (first === 'crowd') return segments.join('/');
  if (ec2VersionSet.has(first)) return ['latest', ...segments.slice(1)].join('/');
  return undefined;
}
