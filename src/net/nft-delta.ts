import type { NftObject, RulesetModel } from './nft-model.ts';

const keyOf = (o: NftObject, item: string) => (o.kind === 'map' ? item.slice(0, item.indexOf(' : ')) : item);
const braces = (xs: string[]) => `{ ${xs.join(', ')} }`;

/**
 * Pure: one `nft -f` transaction turning the ruleset `from` into `to` object
 * by object — new chains, sets and maps added; changed chains flushed and
 * refilled; set and map elements added and deleted; objects that went away
 * deleted last, once nothing refers to them. '' when nothing changed;
 * undefined when only a whole-table replace can do it (other tables, or a
 * set's type or a chain's hook changed).
 */
export function rulesetDelta(from: RulesetModel, to: RulesetModel): string | undefined {
  if (from.length !== to.length || from.some((t, i) => t.family !== to[i]!.family || t.name !== to[i]!.name)) return undefined;
  // The transaction's steps in the order nft must see them: whatever is referred to exists first, goes last.
  const steps = { addChains: [] as string[], addSets: [] as string[], flush: [] as string[], addRules: [] as string[], delElements: [] as string[], addElements: [] as string[], flushGone: [] as string[], delSets: [] as string[], delChains: [] as string[] };
  const { addChains, addSets, flush, addRules, delElements, addElements, flushGone, delSets, delChains } = steps;
  for (const [i, next] of to.entries()) {
    const id = `${next.family} ${next.name}`;
    const old = new Map(from[i]!.objects.map((o) => [o.name, o]));
    const names = new Set(next.objects.map((o) => o.name));
    for (const o of next.objects) {
      const was = old.get(o.name);
      if (was && (was.kind !== o.kind || was.head !== o.head)) return undefined;
      const same = was !== undefined && was.items.length === o.items.length && was.items.every((x, j) => x === o.items[j]);
      if (o.kind === 'chain') {
        if (!was) addChains.push(`add chain ${id} ${o.name}${o.head ? ` { ${o.head} }` : ''}`);
        else if (!same) flush.push(`flush chain ${id} ${o.name}`);
        if (!same) addRules.push(...o.items.map((r) => `add rule ${id} ${o.name} ${r}`));
      } else if (!was) {
        addSets.push(`add ${o.kind} ${id} ${o.name} { ${o.head}${o.items.length ? ` elements = ${braces(o.items)};` : ''} }`);
      } else if (!same) {
        const before = new Set(was.items);
        const after = new Set(o.items);
        const gone = was.items.filter((x) => !after.has(x)).map((x) => keyOf(o, x));
        const added = o.items.filter((x) => !before.has(x));
        if (gone.length) delElements.push(`delete element ${id} ${o.name} ${braces(gone)}`);
        if (added.length) addElements.push(`add element ${id} ${o.name} ${braces(added)}`);
      }
    }
    for (const o of from[i]!.objects.filter((x) => !names.has(x.name))) {
      if (o.kind !== 'chain') delSets.push(`delete ${o.kind} ${id} ${o.name}`);
      else {
        flushGone.push(`flush chain ${id} ${o.name}`);
        delChains.push(`delete chain ${id} ${o.name}`);
      }
    }
  }
  const lines = Object.values(steps).flat();
  return lines.length ? `${lines.join('\n')}\n` : '';
}
