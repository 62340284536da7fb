import { ApiError, type ErrorDetail } from '../../api/errors.ts';
import { isUnicastMac } from '../../api/ip.ts';
import { resourceLimits } from '../../api/kinds/machine-type.ts';

/** Hardware acceleration: KVM where a probe guest really runs, TCG (emulation) otherwise. */
export type Accel = 'kvm' | 'tcg';

/** One NIC: a pre-created host tap and the MAC the guest sees; the tap name identifies the NIC on its host. */
export interface NicConfig {
  tap: string;
  mac: string;
}

/** The driver's own description of one VM, independent of the API's VM object. */
export interface VmConfig {
  /** Stable and filesystem-safe: [A-Za-z0-9_-], 1-64 characters. */
  id: string;
  name: string;
  cpus: number;
  memoryMiB: number;
  /** The cached base image; the boot disk is a copy-on-write overlay, the base is never written. */
  image: { path: string; format: 'qcow2' | 'raw' };
  /** Virtual size of the boot disk. */
  diskGiB: number;
  /** Extra empty disks, created on first start and kept until destroy. */
  disks?: { name: string; sizeGiB: number }[];
  /** Pre-created tap devices, one per NIC. */
  nics?: NicConfig[];
  accel: Accel;
  /** SMBIOS type 1 strings (cloud-init reads `serial`, e.g. `ds=nocloud`). */
  smbios?: { manufacturer?: string; product?: string; serial?: string; uuid?: string };
  /** Direct kernel boot instead of the disk's bootloader (read-only host paths). */
  kernel?: { path: string; initrd?: string; append?: string };
  /** A NoCloud seed image (raw, read-only host path), attached as a read-only virtio disk: the cloud kernel has no built-in CD-ROM driver. */
  seed?: { path: string };
}

const idPattern = /^[A-Za-z0-9_-]{1,64}$/;
const namePattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const tapPattern = /^[A-Za-z0-9_.-]{1,15}$/;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const printable = /^[\x20-\x7e]{0,256}$/;

function intIn(out: ErrorDetail[], path: string, v: unknown, min: number, max: number): void {
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) out.push({ path, message: `must be an integer from ${min} to ${max}` });
}

function absolute(out: ErrorDetail[], path: string, v: unknown): void {
  if (typeof v !== 'string' || !v.startsWith('/') || v.includes('\0') || v.includes(',')) {
    out.push({ path, message: 'must be an absolute path without commas' });
  }
}

/** Every problem with a config, so bad input fails before anything is created. */
export function vmConfigProblems(c: VmConfig): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  if (typeof c.id !== 'string' || !idPattern.test(c.id)) out.push({ path: 'id', message: 'must be 1-64 characters of A-Z, a-z, 0-9, "_" and "-"' });
  if (typeof c.name !== 'string' || !namePattern.test(c.name)) out.push({ path: 'name', message: 'must be a DNS label' });
  intIn(out, 'cpus', c.cpus, 1, resourceLimits.cpus);
  intIn(out, 'memoryMiB', c.memoryMiB, 64, resourceLimits.memoryMiB);
  intIn(out, 'diskGiB', c.diskGiB, 1, resourceLimits.diskGiB);
  absolute(out, 'image.path', c.image?.path);
  if (c.image?.format !== 'qcow2' && c.image?.format !== 'raw') out.push({ path: 'image.format', message: 'must be "qcow2" or "raw"' });
  if (c.accel !== 'kvm' && c.accel !== 'tcg') out.push({ path: 'accel', message: 'must be "kvm" or "tcg"' });
  const diskNames = new Set<string>();
  (c.disks ?? []).forEach((d, i) => {
    if (typeof d.name !== 'string' || !namePattern.test(d.name)) out.push({ path: `disks/${i}/name`, message: 'must be a DNS label' });
    else if (diskNames.has(d.name)) out.push({ path: `disks/${i}/name`, message: `disk name "${d.name}" is used twice` });
    diskNames.add(d.name);
    intIn(out, `disks/${i}/sizeGiB`, d.sizeGiB, 1, resourceLimits.diskGiB);
  });
  const taps = new Set<string>();
  (c.nics ?? []).forEach((n, i) => {
    out.push(...nicProblems(n, `nics/${i}/`));
    if (taps.has(n.tap)) out.push({ path: `nics/${i}/tap`, message: `tap "${n.tap}" is used twice` });
    taps.add(n.tap);
  });
  for (const [k, v] of Object.entries(c.smbios ?? {})) {
    if (typeof v !== 'string' || !printable.test(v)) out.push({ path: `smbios/${k}`, message: 'must be at most 256 printable ASCII characters' });
  }
  if (c.smbios?.uuid !== undefined && !uuidPattern.test(c.smbios.uuid)) out.push({ path: 'smbios/uuid', message: 'must be a UUID' });
  if (c.kernel) {
    absolute(out, 'kernel.path', c.kernel.path);
    if (c.kernel.initrd !== undefined) absolute(out, 'kernel.initrd', c.kernel.initrd);
    if (c.kernel.append !== undefined && !/^[\x20-\x7e]{0,2048}$/.test(c.kernel.append)) {
      out.push({ path: 'kernel.append', message: 'must be at most 2048 printable ASCII characters' });
    }
  }
  if (c.seed) absolute(out, 'seed.path', c.seed.path);
  return out;
}

/** What is wrong with one NIC (paths under `prefix`), checked at start and before a hot-plug. */
export function nicProblems(n: NicConfig, prefix = ''): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  if (typeof n?.tap !== 'string' || !tapPattern.test(n.tap)) out.push({ path: `${prefix}tap`, message: 'must be an interface name of 1-15 characters' });
  if (typeof n?.mac !== 'string' || !isUnicastMac(n.mac)) out.push({ path: `${prefix}mac`, message: 'must be a unicast MAC address' });
  return out;
}

/** Throws `invalid` listing every problem, or returns when the config is usable. */
export function checkVmConfig(c: VmConfig): void {
  const problems = vmConfigProblems(c);
  if (problems.length === 0) return;
  const label = typeof c.name === 'string' ? c.name : String(c.id);
  throw new ApiError('invalid', `Cannot start vm "${label}": ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, { details: problems });
}
