import { Type, type Static } from '@sinclair/typebox';
import { Capacity, Arch } from './kinds/node.ts';
import { DnsLabel, Labels } from './object.ts';

/** `POST /v1/nodes/join-tokens`: an admin asks for a one-time join token. */
export const JoinTokenCreate = Type.Object(
  {
    site: Type.Optional(DnsLabel),
    labels: Type.Optional(Labels),
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 7 * 24 * 3600 })),
  },
  { additionalProperties: false },
);
export type JoinTokenCreate = Static<typeof JoinTokenCreate>;

export const JoinToken = Type.Object({ token: Type.String(), expiresAt: Type.String({ format: 'date-time' }) });
export type JoinToken = Static<typeof JoinToken>;

/** `POST /v1/nodes/enrol`: a host trades a join token for its own credential. */
export const EnrolRequest = Type.Object(
  {
    joinToken: Type.String({ maxLength: 512 }),
    name: DnsLabel,
    arch: Arch,
    capacity: Capacity,
    accel: Type.Union([Type.Literal('kvm'), Type.Literal('tcg')]),
    labels: Type.Optional(Labels),
    agentVersion: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);
export type EnrolRequest = Static<typeof EnrolRequest>;

/** A node credential: the secret is shown once and only its hash is kept. */
export const NodeCredential = Type.Object({
  node: Type.Unknown(),
  credential: Type.String(),
  expiresAt: Type.String({ format: 'date-time' }),
});
export interface NodeCredential {
  node: unknown;
  credential: string;
  expiresAt: string;
}

/**
 * Join tokens read `crowdjoin.<id>.<secret>[.<sha256 of the server certificate, hex>]`;
 * node credentials read `crowdnode.<id>.<secret>`.
 */
export function parseJoinToken(token: string): { id: string; secret: string; fingerprint?: string } | undefined {
  const m = /^crowdjoin\.([0-9A-Z]{26})\.([A-Za-z0-9_-]{43})(?:\.([0-9a-f]{64}))?$/.exec(token);
  if (!m) return undefined;
  return { id: m[1]!, secret: m[2]!, ...(m[3] ? { fingerprint: m[3] } : {}) };
}

export function parseNodeCredential(token: string): { id: string; secret: string } | undefined {
  const m = /^crowdnode\.([0-9A-Z]{26})\.([A-Za-z0-9_-]{43})$/.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}
