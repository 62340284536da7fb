import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { HostNetworkView } from '../api/kinds/network.ts';
import type { VmSpec } from '../api/kinds/vm.ts';
import type { AnyObject } from '../api/object.ts';
import type { Runner } from '../base/runner.ts';
import { buildNocloudIso } from '../metadata/nocloud-iso.ts';
import { guestInfo, type GuestPlacement } from './metadata-guests.ts';

/** Pure: whether a VM gets a NoCloud seed disk: it asks for one, or it has no NIC to reach the metadata service at boot. */
export function wantsNocloudSeed(spec: VmSpec): boolean {
  return spec.install?.nocloud === true || (spec.nics?.length ?? 0) === 0;
}

/**
 * The agent's NoCloud seeds: one `cidata` ISO per VM, `seed.iso` in the VM's
 * own run directory (removed with it on destroy), built from the same
 * GuestInfo the metadata service serves (never secret or private
 * parameters: the seed carries identity, keys, user-data and network only).
 * Built before the first start only: a later change of the VM is not written
 * into an existing seed (the metadata service has it live).
 */
export class NocloudSeeds {
  constructor(private readonly o: { runner: Runner; runDir: string; place: GuestPlacement }) {}

  /** Where a VM's seed lives. */
  path(id: string): string {
    return join(this.o.runDir, id, 'seed.iso');
  }

  /** Builds the VM's seed at `path` unless it exists already. */
  async ensure(vm: AnyObject, view: HostNetworkView | undefined, path: string): Promise<void> {
    if (existsSync(path)) return;
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await buildNocloudIso(this.o.runner, guestInfo(vm, view, this.o.place), path);
  }
}
