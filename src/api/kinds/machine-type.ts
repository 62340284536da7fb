import { Type, type Static } from '@sinclair/typebox';
import type { ErrorDetail } from '../errors.ts';
import type { KindDef } from '../kind.ts';
import { createSchema, objectSchema, updateSchema } from '../object.ts';

const Range = (max: number) =>
  Type.Object(
    { min: Type.Integer({ minimum: 1, maximum: max }), max: Type.Integer({ minimum: 1, maximum: max }) },
    { additionalProperties: false },
  );

export const resourceLimits = { cpus: 256, memoryMiB: 4 * 1024 * 1024, diskGiB: 65536 } as const;
export type ResourceName = keyof typeof resourceLimits;
export const resourceNames = Object.keys(resourceLimits) as ResourceName[];

export const MachineTypeSpec = Type.Object(
  {
    cpus: Type.Integer({ minimum: 1, maximum: resourceLimits.cpus }),
    memoryMiB: Type.Integer({ minimum: 64, maximum: resourceLimits.memoryMiB }),
    diskGiB: Type.Integer({ minimum: 1, maximum: resourceLimits.diskGiB }),
    /** How far a VM may override each parameter; absent means it may not. */
    ranges: Type.Optional(
      Type.Object(
        {
          cpus: Type.Optional(Range(resourceLimits.cpus)),
          memoryMiB: Type.Optional(Range(resourceLimits.memoryMiB)),
          diskGiB: Type.Optional(Range(resourceLimits.diskGiB)),
        },
        { additionalProperties: false },
      ),
    ),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);
export type MachineTypeSpec = Static<typeof MachineTypeSpec>;
export const MachineTypeStatus = Type.Object({}, { additionalProperties: true });
export const MachineType = objectSchema('machine-type', MachineTypeSpec, MachineTypeStatus);
export type MachineType = Static<typeof MachineType>;
export const MachineTypeCreate = createSchema('machine-type', MachineTypeSpec);
export type MachineTypeCreate = Static<typeof MachineTypeCreate>;

function checkMachineType(raw: Record<string, unknown>): ErrorDetail[] {
  const spec = raw as MachineTypeSpec;
  const out: ErrorDetail[] = [];
  for (const r of resourceNames) {
    const range = spec.ranges?.[r];
    if (!range) continue;
    if (range.min > range.max) out.push({ path: `/spec/ranges/${r}`, message: `min ${range.min} is above max ${range.max}` });
    else if (spec[r] < range.min || spec[r] > range.max)
      out.push({ path: `/spec/${r}`, message: `default ${spec[r]} is outside the allowed range ${range.min}-${range.max}` });
  }
  return out;
}

export const machineTypeKind: KindDef = {
  kind: 'machine-type',
  plural: 'machine-types',
  idPrefix: 'mt',
  scope: 'cluster',
  spec: MachineTypeSpec,
  status: MachineTypeStatus,
  read: MachineType,
  create: MachineTypeCreate,
  update: updateSchema('machine-type', MachineTypeSpec),
  references: () => [],
  checkSpec: checkMachineType,
};
