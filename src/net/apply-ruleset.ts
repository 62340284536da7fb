import type { Runner } from '../base/runner.ts';

/** Loads a rendered ruleset in one nftables transaction: all of it or, on any error, none of it. */
export async function applyRuleset(runner: Runner, text: string): Promise<void> {
  await runner.run({ argv: ['nft', '-f', '-'], input: text });
}
