import { Type, type Static } from '@sinclair/typebox';
import type { KindDef } from '../kind.ts';
import { Condition, DnsLabel, createSchema, objectSchema, updateSchema } from '../object.ts';

export const Arch = Type.Union([Type.Literal('x86_64'), Type.Literal('aarch64')]);
export type Arch = Static<typeof Arch>;

export const Capacity = Type.Object(
  {
    cpus: Type.Integer({ minimum: 1, maximum: 4096 }),
    memoryMiB: Type.Integer({ minimum: 64, maximum: 64 * 1024 * 1024 }),
    diskGiB: Type.Integer({ minimum: 1, maximum: 1024 * 1024 }),
  },
  { additionalProperties: false },
);
export type Capacity = Static<typeof Capacity>;

export const NodeSpec = Type.Object(
  {
    site: DnsLabel,
    arch: Arch,
    capacity: Capacity,
    /** Overcommit ratios for scheduling; 1 means none. */
    overcommit: Type.Optional(
      Type.Object(
        {
          cpu: Type.Optional(Type.Number({ minimum: 1, maximum: 64 })),
          memory: Type.Optional(Type.Number({ minimum: 1, maximum: 4 })),
        },
        { additionalProperties: false },
      ),
    ),
    /** Cordoned: no new VMs are placed here. */
    unschedulable: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type NodeSpec = Static<typeof NodeSpec>;

export const NodeStatus = Type.Object(
  {
    phase: Type.Optional(
      Type.Union([Type.Literal('ready'), Type.Literal('unreachable'), Type.Literal('revoked')]),
    ),
    lastSeen: Type.Optional(Type.String({ format: 'date-time' })),
    accel: Type.Optional(Type.Union([Type.Literal('kvm'), Type.Literal('tcg')])),
    agentVersion: Type.Optional(Type.String({ maxLength: 64 })),
    /** The host's address for VXLAN between hosts, reported by its agent. */
    underlayIp: Type.Optional(Type.String({ maxLength: 45 })),
    conditions: Type.Optional(Type.Array(Condition, { maxItems: 32 })),
  },
  { additionalProperties: false },
);
export type NodeStatus = Static<typeof NodeStatus>;

export const Node = objectSchema('node', NodeSpec, NodeStatus);
export type Node = Static<typeof Node>;
export const NodeCreate = createSchema('node', NodeSpec);
export type NodeCreate = Static<typeof NodeCreate>;

export const nodeKind: KindDef = {
  kind: 'node',
  plural: 'nodes',
  idPrefix: 'node',
  scope: 'cluster',
  spec: NodeSpec,
  status: NodeStatus,
  read: Node,
  create: NodeCreate,
  update: updateSchema('node', NodeSpec),
  references: (spec) => [{ kind: 'site', name: spec.site as string, path: '/spec/site' }],
};
