import { ApiError } from '../../api/errors.ts';
import { defaultProject } from '../../api/kinds.ts';
import type { VmStatus } from '../../api/kinds/vm.ts';
import type { AnyObject } from '../../api/object.ts';
import type { Store } from '../../store/store.ts';
import type { NodeTunnel } from './node-tunnel.ts';
import type { TunnelRegistry } from './tunnel-registry.ts';

/** A VM and the tunnel of the node it is bound to. */
export interface VmTarget {
  vm: AnyObject;
  tunnel: NodeTunnel;
}

/**
 * Finds a VM and its node's tunnel for an action named `what` ("reboot",
 * "attach to the console of"): `not_found` for an unknown VM, `conflict`
 * before it is placed, `unavailable` while its node's agent is away or
 * after the node was revoked.
 */
export async function vmTarget(deps: { store: Store; tunnels: TunnelRegistry }, id: string, project: string | undefined, what: string): Promise<VmTarget> {
  const vm = await deps.store.get({ kind: 'vm', project: project ?? defaultProject, idOrName: id });
  const node = (vm.status as Partial<VmStatus>).node;
  if (!node) throw new ApiError('conflict', `Cannot ${what} vm "${vm.name}": it is not placed on a node yet`);
  const tunnel = deps.tunnels.get(node, `${what} vm "${vm.name}"`);
  // A tunnel opened before its node was revoked is never used, and is dropped.
  const n = await deps.store.get({ kind: 'node', idOrName: node }).catch(() => undefined);
  if (!n || (n.status as { phase?: string }).phase === 'revoked') {
    tunnel.close(4001, 'the node was revoked');
    throw new ApiError('unavailable', `Cannot ${what} vm "${vm.name}": node "${node}" was revoked`);
  }
  return { vm, tunnel };
}
