/** One named object of an nftables table: a set or map with its elements, or a chain with its rules. */
export interface NftObject {
  kind: 'set' | 'map' | 'chain';
  name: string;
  /** The declaration: `type ifname;` for a set or map, the hook line of a base chain, '' for a regular chain. */
  head: string;
  /** Elements of a set or map (`key` or `key : value`), or rules of a chain, in order. */
  items: string[];
}

/** A table crowdcloud owns: deleted and recreated whole, or changed object by object. */
export interface NftTable {
  family: 'bridge' | 'inet';
  name: string;
  objects: NftObject[];
}

/** The host's whole ruleset as data: what is applied, remembered, and compared with the next one. */
export type RulesetModel = NftTable[];

function objectText(o: NftObject): string[] {
  if (o.kind === 'chain') return [`\tchain ${o.name} {`, ...(o.head ? [`\t\t${o.head}`] : []), ...o.items.map((r) => `\t\t${r}`), '\t}'];
  return [`\t${o.kind} ${o.name} { ${o.head}${o.items.length ? ` elements = { ${o.items.join(', ')} };` : ''} }`];
}

/**
 * Pure: the `nft -f` script that deletes and recreates exactly the model's
 * tables in one transaction (other tables are never touched).
 */
export function rulesetText(model: RulesetModel): string {
  const ids = model.map((t) => `${t.family} ${t.name}`);
  return [
    '# crowdcloud host firewall: generated, do not edit',
    ...ids.flatMap((id) => [`table ${id} {}`, `delete table ${id}`]),
    ...model.flatMap((t) => [`table ${t.family} ${t.name} {`, ...t.objects.flatMap(objectText), '}']),
    '',
  ].join('\n');
}
