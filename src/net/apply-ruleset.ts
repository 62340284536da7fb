import type { Runner } from '../base/runner.ts';
import { rulesetDelta } from './nft-delta.ts';
import { rulesetText, type RulesetModel } from './nft-model.ts';

/** Loads a rendered ruleset in one nftables transaction: all of it or, on any error, none of it. */
export async function applyRuleset(runner: Runner, text: string): Promise<void> {
  await runner.run({ argv: ['nft', '-f', '-'], input: text });
}

/** How a ruleset reached the kernel: whole tables replaced, or only what changed. */
export type RulesetApply = 'full' | 'delta';

/**
 * Applies rulesets to one host, remembering the last one applied so that a
 * change goes as one transaction of only its deltas (see rulesetDelta). The
 * tables are replaced whole on the first apply (kernel state unknown, e.g.
 * after an agent restart), when a change is structural, when nothing changed
 * (a periodic reapply repairs drift), and when a delta fails — nft
 * transactions are atomic, so a failed delta left the previous ruleset in place.
 */
export class RulesetApplier {
  private last: RulesetModel | undefined;

  async apply(runner: Runner, model: RulesetModel): Promise<RulesetApply> {
    const delta = this.last ? rulesetDelta(this.last, model) : undefined;
    if (delta) {
      try {
        await applyRuleset(runner, delta);
        this.last = model;
        return 'delta';
      } catch {
        // The kernel drifted from what was applied last (or the delta is wrong): replace the tables instead.
      }
    }
    await applyRuleset(runner, rulesetText(model));
    this.last = model;
    return 'full';
  }
}
