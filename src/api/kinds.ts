import { ApiError } from './errors.ts';
import type { KindDef } from './kind.ts';
import { firewallKind } from './kinds/firewall.ts';
import { imageKind } from './kinds/image.ts';
import { machineTypeKind } from './kinds/machine-type.ts';
import { networkKind } from './kinds/network.ts';
import { nodeKind } from './kinds/node.ts';
import { projectKind } from './kinds/project.ts';
import { siteKind } from './kinds/site.ts';
import { vmKind } from './kinds/vm.ts';

/** Every kind of object, in the order lists and docs show them. */
export const kinds: readonly KindDef[] = [
  projectKind,
  siteKind,
  nodeKind,
  imageKind,
  machineTypeKind,
  networkKind,
  firewallKind,
  vmKind,
];

const byName = new Map(kinds.map((k) => [k.kind, k]));
const byPlural = new Map(kinds.map((k) => [k.plural, k]));

export function kindDef(kind: string): KindDef {
  const def = byName.get(kind);
  if (!def) throw new ApiError('invalid', `Unknown kind "${kind}"`, { details: [{ path: 'kind', message: `expected one of ${kinds.map((k) => k.kind).join(', ')}` }] });
  return def;
}

export function kindByPlural(plural: string): KindDef | undefined {
  return byPlural.get(plural);
}

export function isKind(kind: string): boolean {
  return byName.has(kind);
}

export const defaultProject = 'default';
