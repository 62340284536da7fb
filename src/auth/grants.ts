import { Type, type Static } from '@sinclair/typebox';
import type { Identity } from './authenticator.ts';

export type ProjectRole = 'admin' | 'operator' | 'viewer';

/** How strong each project role is, for merging grants: the strongest wins. */
export const roleRank: Record<ProjectRole, number> = { viewer: 1, operator: 2, admin: 3 };

/**
 * One role given by config to a user or group: a project role (`project: "*"`
 * means every project) or cluster administration.
 */
export const Grant = Type.Union([
  Type.Object({ role: Type.Literal('cluster-admin') }, { additionalProperties: false }),
  Type.Object(
    {
      project: Type.String({ minLength: 1, maxLength: 63 }),
      role: Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]),
    },
    { additionalProperties: false },
  ),
]);
export type Grant = Static<typeof Grant>;

/** Config: user or group name → the grants it carries. */
export const GrantMap = Type.Record(Type.String({ minLength: 1 }), Type.Array(Grant));
export type GrantMap = Static<typeof GrantMap>;

/** Folds grants into the role fields of an Identity; the strongest role per project wins. */
export function applyGrants(grants: Iterable<Grant>): Pick<Identity, 'clusterAdmin' | 'roles'> {
  let clusterAdmin = false;
  const roles: Record<string, ProjectRole> = {};
  for (const g of grants) {
    if (g.role === 'cluster-admin') {
      clusterAdmin = true;
      continue;
    }
    const had = roles[g.project];
    if (!had || roleRank[g.role] > roleRank[had]) roles[g.project] = g.role;
  }
  const out: Pick<Identity, 'clusterAdmin' | 'roles'> = {};
  if (clusterAdmin) out.clusterAdmin = true;
  if (Object.keys(roles).length > 0) out.roles = roles;
  return out;
}
