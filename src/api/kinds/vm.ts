import { Type, type Static } from '@sinclair/typebox';
import type { ErrorDetail } from '../errors.ts';
import type { CheckContext, KindDef, Reference } from '../kind.ts';
import { Condition, DnsLabel, Labels, createSchema, objectSchema, updateSchema } from '../object.ts';
import { isUnicastMac, macPattern, parseIp, parsePrefix, prefixContains } from '../ip.ts';
import { resourceLimits, resourceNames, type MachineTypeSpec } from './machine-type.ts';

export const VmNic = Type.Object(
  {
    network: DnsLabel,
    mac: Type.Optional(Type.String({ pattern: macPattern })),
    /** "dhcp" (default), "none", or a static address on the network's subnet. */
    ipv4: Type.Optional(Type.String({ maxLength: 15 })),
    /** "auto" (the network's mode, default), "none", or a static address. */
    ipv6: Type.Optional(Type.String({ maxLength: 45 })),
    firewalls: Type.Optional(Type.Array(DnsLabel, { maxItems: 16, uniqueItems: true })),
    rateLimit: Type.Optional(
      Type.Object(
        {
          ingressMbit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
          egressMbit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type VmNic = Static<typeof VmNic>;

export const VmDisk = Type.Object(
  { name: DnsLabel, sizeGiB: Type.Integer({ minimum: 1, maximum: resourceLimits.diskGiB }) },
  { additionalProperties: false },
);

export const VmSpec = Type.Object(
  {
    image: DnsLabel,
    machineType: DnsLabel,
    /** Overrides of the machine type's defaults, within its allowed ranges. */
    resources: Type.Optional(
      Type.Object(
        {
          cpus: Type.Optional(Type.Integer({ minimum: 1, maximum: resourceLimits.cpus })),
          memoryMiB: Type.Optional(Type.Integer({ minimum: 64, maximum: resourceLimits.memoryMiB })),
          diskGiB: Type.Optional(Type.Integer({ minimum: 1, maximum: resourceLimits.diskGiB })),
        },
        { additionalProperties: false },
      ),
    ),
    power: Type.Optional(Type.Union([Type.Literal('running'), Type.Literal('stopped')])),
    restartPolicy: Type.Optional(Type.Union([Type.Literal('always'), Type.Literal('on-failure'), Type.Literal('never')])),
    nics: Type.Optional(Type.Array(VmNic, { maxItems: 16 })),
    disks: Type.Optional(Type.Array(VmDisk, { maxItems: 16 })),
    placement: Type.Optional(
      Type.Object(
        {
          site: Type.Optional(DnsLabel),
          node: Type.Optional(DnsLabel),
          requiredLabels: Type.Optional(Labels),
          preferredLabels: Type.Optional(Labels),
          /** VMs sharing a spread key are placed on different nodes where possible. */
          spreadKey: Type.Optional(Type.String({ maxLength: 63 })),
        },
        { additionalProperties: false },
      ),
    ),
    userData: Type.Optional(Type.String({ maxLength: 64 * 1024 })),
    sshKeys: Type.Optional(Type.Array(Type.String({ maxLength: 8192, pattern: '^(ssh-|ecdsa-|sk-)' }), { maxItems: 32 })),
    /** Guest metadata service: "required" refuses token-less (IMDSv1) GETs with 401; default "optional". */
    imds: Type.Optional(Type.Object({ tokens: Type.Optional(Type.Union([Type.Literal('optional'), Type.Literal('required')])) }, { additionalProperties: false })),
    install: Type.Optional(
      Type.Object(
        {
          mode: Type.Union([Type.Literal('run'), Type.Literal('self_install'), Type.Literal('install')]),
          parameters: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), Type.String({ maxLength: 8192 }), { maxProperties: 128, additionalProperties: false })),
          /** Stored, but the API shows each value as "[private]"; only the VM's host reads them (guest: /crowd/v1/os/parameters/private.json). */
          privateParameters: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), Type.String({ maxLength: 8192 }), { maxProperties: 128, additionalProperties: false })),
          packageUrl: Type.Optional(Type.String({ maxLength: 2048, pattern: '^https?://' })),
          timeoutSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 86400 })),
          /** Attach a NoCloud `cidata` seed disk even when the VM has NICs (a VM without NICs always gets one). */
          nocloud: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type VmSpec = Static<typeof VmSpec>;

/**
 * VM lifecycle, as reported in status.phase:
 *
 *   pending ──► scheduled ──► provisioning ──► installing ──► running ⇄ stopped
 *      │            │              │               │             │
 *      └────────────┴──────────────┴───────────────┴─────────────┴──► failed
 *   (any) ──► deleting
 */
export const VmPhase = Type.Union([
  Type.Literal('pending'),
  Type.Literal('scheduled'),
  Type.Literal('provisioning'),
  Type.Literal('installing'),
  Type.Literal('running'),
  Type.Literal('stopped'),
  Type.Literal('failed'),
  Type.Literal('deleting'),
]);
export type VmPhase = Static<typeof VmPhase>;

export const VmStatus = Type.Object(
  {
    phase: Type.Optional(VmPhase),
    node: Type.Optional(DnsLabel),
    addresses: Type.Optional(
      Type.Array(
        Type.Object(
          {
            nic: Type.Integer({ minimum: 0 }),
            mac: Type.String({ pattern: macPattern }),
            ipv4: Type.Optional(Type.String()),
            ipv6: Type.Optional(Type.String()),
          },
          { additionalProperties: false },
        ),
        { maxItems: 16 },
      ),
    ),
    conditions: Type.Optional(Type.Array(Condition, { maxItems: 32 })),
    lastError: Type.Optional(Type.String({ maxLength: 4096 })),
  },
  { additionalProperties: false },
);
export type VmStatus = Static<typeof VmStatus>;

export const Vm = objectSchema('vm', VmSpec, VmStatus);
export type Vm = Static<typeof Vm>;
/** Secret OS parameters: write-only, on create/replace/patch bodies only; the server holds them in memory until the VM's host has them, never in the store. */
export const SecretParameters = Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), Type.String({ maxLength: 8192 }), { maxProperties: 128, additionalProperties: false });
export type SecretParameters = Static<typeof SecretParameters>;
const vmCreate = createSchema('vm', VmSpec);
export const VmCreate = Type.Object({ ...vmCreate.properties, secretParameters: Type.Optional(SecretParameters) }, { $id: vmCreate.$id, additionalProperties: false });
export type VmCreate = Static<typeof VmCreate>;
const vmUpdate = updateSchema('vm', VmSpec);
export const VmUpdate = Type.Object({ ...vmUpdate.properties, secretParameters: Type.Optional(SecretParameters) }, { $id: vmUpdate.$id, additionalProperties: false });
export type VmUpdate = Static<typeof VmUpdate>;

function checkVm(raw: Record<string, unknown>): ErrorDetail[] {
  const spec = raw as VmSpec;
  const out: ErrorDetail[] = [];
  // The schema names Ganeti's install modes; only "run" is built, so the others are refused rather than run as "run".
  if (spec.install && spec.install.mode !== 'run')
    out.push({ path: '/spec/install/mode', message: `"${spec.install.mode}" is not supported yet: only "run" (boot the image)` });
  const disks = new Set<string>();
  spec.disks?.forEach((d, i) => {
    if (disks.has(d.name)) out.push({ path: `/spec/disks/${i}/name`, message: `disk name "${d.name}" is used twice` });
    disks.add(d.name);
  });
  const macs = new Set<string>();
  spec.nics?.forEach((nic, i) => {
    if (nic.mac) {
      if (!isUnicastMac(nic.mac)) out.push({ path: `/spec/nics/${i}/mac`, message: `"${nic.mac}" is not a unicast MAC` });
      if (macs.has(nic.mac.toLowerCase())) out.push({ path: `/spec/nics/${i}/mac`, message: `MAC "${nic.mac}" is used twice` });
      macs.add(nic.mac.toLowerCase());
    }
    if (nic.ipv4 && nic.ipv4 !== 'dhcp' && nic.ipv4 !== 'none' && parseIp(nic.ipv4)?.family !== 4)
      out.push({ path: `/spec/nics/${i}/ipv4`, message: `"${nic.ipv4}" is not "dhcp", "none" or an IPv4 address` });
    if (nic.ipv6 && nic.ipv6 !== 'auto' && nic.ipv6 !== 'none' && parseIp(nic.ipv6)?.family !== 6)
      out.push({ path: `/spec/nics/${i}/ipv6`, message: `"${nic.ipv6}" is not "auto", "none" or an IPv6 address` });
  });
  return out;
}

function checkVmWith(raw: Record<string, unknown>, ctx: CheckContext): ErrorDetail[] {
  const spec = raw as VmSpec;
  const out: ErrorDetail[] = [];
  const mt = ctx.ref('machine-type', spec.machineType)?.spec as MachineTypeSpec | undefined;
  if (mt) {
    for (const r of resourceNames) {
      const want = spec.resources?.[r];
      if (want === undefined || want === mt[r]) continue;
      const range = mt.ranges?.[r];
      if (!range) out.push({ path: `/spec/resources/${r}`, message: `machine type "${spec.machineType}" does not allow overriding ${r}` });
      else if (want < range.min || want > range.max)
        out.push({ path: `/spec/resources/${r}`, message: `${want} is outside ${range.min}-${range.max} allowed by machine type "${spec.machineType}"` });
    }
  }
  spec.nics?.forEach((nic, i) => {
    const net = ctx.ref('network', nic.network)?.spec as { ipv4?: { subnet: string }; ipv6?: { prefix: string } } | undefined;
    if (!net) return;
    for (const [family, want, range] of [[4, nic.ipv4, net.ipv4?.subnet], [6, nic.ipv6, net.ipv6?.prefix]] as const) {
      const ip = want ? parseIp(want) : undefined;
      if (!ip) continue;
      const prefix = range ? parsePrefix(range) : undefined;
      if (!prefix) out.push({ path: `/spec/nics/${i}/ipv${family}`, message: `network "${nic.network}" has no IPv${family} ${family === 4 ? 'subnet' : 'prefix'}` });
      else if (!prefixContains(prefix, ip)) out.push({ path: `/spec/nics/${i}/ipv${family}`, message: `"${want}" is outside ${range} of network "${nic.network}"` });
    }
  });
  const image = ctx.ref('image', spec.image);
  if (image && (image.spec as { deprecated?: boolean }).deprecated && !ctx.existing)
    out.push({ path: '/spec/image', message: `image "${spec.image}" is deprecated and not available to new VMs` });
  return out;
}

export const vmKind: KindDef = {
  kind: 'vm',
  plural: 'vms',
  idPrefix: 'vm',
  scope: 'project',
  spec: VmSpec,
  status: VmStatus,
  read: Vm,
  create: VmCreate,
  update: VmUpdate,
  references: (raw) => {
    const spec = raw as VmSpec;
    const refs: Reference[] = [
      { kind: 'image', name: spec.image, path: '/spec/image' },
      { kind: 'machine-type', name: spec.machineType, path: '/spec/machineType' },
    ];
    spec.nics?.forEach((nic, i) => {
      refs.push({ kind: 'network', name: nic.network, path: `/spec/nics/${i}/network` });
      nic.firewalls?.forEach((f, j) => refs.push({ kind: 'firewall', name: f, path: `/spec/nics/${i}/firewalls/${j}` }));
    });
    if (spec.placement?.node) refs.push({ kind: 'node', name: spec.placement.node, path: '/spec/placement/node' });
    if (spec.placement?.site) refs.push({ kind: 'site', name: spec.placement.site, path: '/spec/placement/site' });
    return refs;
  },
  checkSpec: checkVm,
  checkWith: checkVmWith,
};
