import { jsonDoc, textDoc, type Documents } from './documents.ts';
import type { GuestInfo } from './guest-info.ts';

/** Path of the host↔guest pipe's read end (GET, consumes what it returns). */
export const pipeReadPath = 'crowd/v1/pipe/read';
/** Path of the host↔guest pipe's write end (POST). */
export const pipeWritePath = 'crowd/v1/pipe/write';

/**
 * Adds the crowdcloud namespace: OS parameters by visibility. This is the
 * only place private and secret values are served; the guest should copy
 * them to files only root can read.
 */
export function addCrowdDocuments(out: Documents, guest: GuestInfo): void {
  out.set('crowd', textDoc('v1/'));
  out.set('crowd/v1', textDoc('os/\npipe/'));
  out.set('crowd/v1/os', textDoc('parameters/'));
  out.set('crowd/v1/os/parameters', textDoc('private.json\npublic.json\nsecret.json'));
  out.set('crowd/v1/os/parameters/public.json', jsonDoc(guest.parameters.public));
  out.set('crowd/v1/os/parameters/private.json', jsonDoc(guest.parameters.private));
  out.set('crowd/v1/os/parameters/secret.json', jsonDoc(guest.parameters.secret));
  out.set('crowd/v1/pipe', textDoc('read\nwrite'));
}
