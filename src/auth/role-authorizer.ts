import { ApiError } from '../api/errors.ts';
import { isKind, kindDef } from '../api/kinds.ts';
import type { Identity } from './authenticator.ts';
import type { Action, Authorizer } from './authorizer.ts';
import type { ProjectRole } from './grants.ts';
import { scopesAllow } from './scopes.ts';

/** Resources that are not object kinds, and whether each belongs to a project. */
const systemResources: Record<string, 'project' | 'cluster'> = {
  token: 'project',
  role: 'project',
  user: 'cluster',
  audit: 'cluster',
};

/** Cluster-scoped resources any identity with at least one role may read (needed to use its projects). */
const sharedReads = new Set(['project', 'site', 'machine-type']);

/** What a project role may write; every role reads everything in its project. */
const projectWrites: Record<ProjectRole, (resource: string) => boolean> = {
  admin: () => true,
  operator: (r) => r === 'vm',
  viewer: () => false,
};

export type Decision = { allow: true } | { allow: false; reason: string };

function scopeOf(resource: string): 'project' | 'cluster' | undefined {
  if (isKind(resource)) return kindDef(resource).scope;
  return systemResources[resource];
}

/** The role an identity holds in a project: its own, else its all-projects (`*`) role. */
export function roleIn(identity: Identity, project: string): ProjectRole | undefined {
  return identity.roles?.[project] ?? identity.roles?.['*'];
}

/** The projects whose objects an identity may list: `*` for all, else their names. */
export function visibleProjects(identity: Identity): '*' | string[] {
  if (identity.node) return [];
  if (identity.clusterAdmin || identity.roles?.['*']) return '*';
  return Object.keys(identity.roles ?? {});
}

/**
 * The decision table, pure:
 *
 *   host credential                      → pass (the server's node authorizer decides per object)
 *   outside the identity's token scopes  → deny
 *   cluster admin                        → allow
 *   project resource, no project given   → deny (list per visible project instead)
 *   project resource                     → read: any role; write: admin all, operator vm only
 *   project / site / machine-type read   → any role anywhere (project reads: a role in that project)
 *   other cluster resource               → deny
 */
export function decide(identity: Identity, action: Action): Decision {
  const { verb, resource, project } = action;
  // What a node may touch depends on the object; the server's node authorizer decides (as in AdminOnlyAuthorizer).
  if (identity.node) return { allow: true };
  if (identity.scopes && !scopesAllow(identity.scopes, resource, verb)) return { allow: false, reason: `outside the token's scopes` };
  if (identity.clusterAdmin) return { allow: true };
  const scope = scopeOf(resource);
  if (scope === 'project') {
    if (project === undefined) return { allow: false, reason: 'listing across projects needs the cluster-admin role' };
    const role = roleIn(identity, project);
    if (!role) return { allow: false, reason: `no role in project "${project}"` };
    if (verb === 'read' || projectWrites[role](resource)) return { allow: true };
    return { allow: false, reason: `role "${role}" cannot change ${resource} objects` };
  }
  if (verb === 'read' && sharedReads.has(resource)) {
    if (resource === 'project' && project !== undefined) {
      return roleIn(identity, project) ? { allow: true } : { allow: false, reason: `no role in project "${project}"` };
    }
    if (Object.keys(identity.roles ?? {}).length > 0) return { allow: true };
    return { allow: false, reason: 'no role in any project' };
  }
  return { allow: false, reason: 'needs the cluster-admin role' };
}

/** Projects as tenancy boundaries, roles per project, a cluster-admin role, token scopes narrowing them. */
export class RoleAuthorizer implements Authorizer {
  authorize(identity: Identity, action: Action): void {
    const d = decide(identity, action);
    if (d.allow) return;
    const where = action.project !== undefined ? ` in project "${action.project}"` : '';
    throw new ApiError('forbidden', `Cannot ${action.verb} ${action.resource}${where}: permission denied`, {
      details: [{ path: 'authorization', message: d.reason }],
    });
  }
}
