import type { MachineTypeSpec } from '../api/kinds/machine-type.ts';
import type { VmSpec } from '../api/kinds/vm.ts';
import type { AnyObject } from '../api/object.ts';
import { guestUuid } from '../metadata/guest-info.ts';
import type { Accel, VmConfig } from './drivers/vm-config.ts';
import type { ImageAvailability } from './image-cache.ts';
import { wantsNocloudSeed } from './nocloud-seeds.ts';
import type { DesiredVm } from './reconcile.ts';

/** What turning a VM object into a driver config needs from the host. */
export interface HostFacts {
  accel: Accel;
  /** The cached base image of an image object, or that its pull is under way, or why it cannot be had. */
  imagePath(image: AnyObject): ImageAvailability | undefined;
  /** Registers a callback for when an image becomes available (a pull finished). */
  onImageChange?(listener: () => void): void;
  /** Where a VM's NoCloud seed image goes; without it no VM gets one. */
  seedPath?(id: string): string;
  /** A referenced object from the agent's cache. */
  lookup(kind: string, project: string, name: string): AnyObject | undefined;
}

/** The desired state of one VM on this host: power, policy and the driver config (or why there is none, or what it waits for). */
export function desiredVm(vm: AnyObject, host: HostFacts): DesiredVm & { waiting?: string } {
  const spec = vm.spec as VmSpec;
  const base = { id: vm.id, power: spec.power ?? 'running', restartPolicy: spec.restartPolicy ?? 'always' } as const;
  const mtDoc = host.lookup('machine-type', '', spec.machineType);
  if (!mtDoc) return { ...base, problem: `machine type "${spec.machineType}" is not known to this host` };
  const imageDoc = host.lookup('image', vm.project ?? '', spec.image);
  const image = imageDoc && host.imagePath(imageDoc);
  if (!image) return { ...base, problem: `image "${spec.image}" is not available on this host` };
  if ('problem' in image) return { ...base, problem: image.problem };
  if ('waiting' in image) return { ...base, problem: image.waiting, waiting: image.waiting };
  const mt = mtDoc.spec as MachineTypeSpec;
  const config: VmConfig = {
    id: vm.id,
    name: vm.name,
    cpus: spec.resources?.cpus ?? mt.cpus,
    memoryMiB: spec.resources?.memoryMiB ?? mt.memoryMiB,
    diskGiB: spec.resources?.diskGiB ?? mt.diskGiB,
    image,
    accel: host.accel,
    ...(spec.disks?.length ? { disks: spec.disks } : {}),
    smbios: smbios(vm.id, (spec.nics?.length ?? 0) > 0),
    ...(host.seedPath && wantsNocloudSeed(spec) ? { seed: { path: host.seedPath(vm.id) } } : {}),
  };
  return { ...base, config };
}

/**
 * SMBIOS system identity: the guest UUID always; with NICs also OpenStack
 * Nova's strings, so stock cloud-init picks the OpenStack datasource at
 * 169.254.169.254 (src/metadata/smbios.ts explains why; VmConfig has no
 * chassis fields, so only `smbiosValues`' type-1 part is set).
 */
function smbios(id: string, networked: boolean): NonNullable<VmConfig['smbios']> {
  const uuid = guestUuid(id);
  return networked ? { manufacturer: 'OpenStack Foundation', product: 'OpenStack Nova', serial: uuid, uuid } : { uuid };
}
