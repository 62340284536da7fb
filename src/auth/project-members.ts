import type { Identity } from './authenticator.ts';
import { roleRank, type ProjectRole } from './grants.ts';

/** A project's role bindings as kept in its spec: a user name or `group:<name>` → role. */
export interface ProjectMembers {
  name: string;
  members?: Record<string, ProjectRole>;
}

/**
 * The identity with the roles its project bindings give it added (the
 * strongest role per project wins). Host credentials and scoped tokens are
 * returned as they are: a token carries exactly the role it was minted with.
 */
export function withMemberships(identity: Identity, projects: readonly ProjectMembers[]): Identity {
  if (identity.node || identity.authenticator === 'scoped-token') return identity;
  const keys = [identity.name, ...(identity.groups ?? []).map((g) => `group:${g}`)];
  const roles: Record<string, ProjectRole> = { ...identity.roles };
  let added = false;
  for (const p of projects) {
    for (const key of keys) {
      const role = p.members?.[key];
      if (!role) continue;
      const had = roles[p.name];
      if (!had || roleRank[role] > roleRank[had]) {
        roles[p.name] = role;
        added = true;
      }
    }
  }
  return added ? { ...identity, roles } : identity;
}
