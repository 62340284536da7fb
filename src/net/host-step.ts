import { Reverter } from '../base/reverter.ts';
import type { Runner } from '../base/runner.ts';

/** One host change as a command, with the commands that undo it (run in order). */
export interface HostStep {
  argv: string[];
  undo: string[][];
}

/**
 * Runs steps in order; if one fails, the undos of the steps already done run in
 * reverse and the first error is rethrown, so a host is never left half-changed.
 */
export async function runHostSteps(runner: Runner, steps: HostStep[]): Promise<void> {
  const reverter = new Reverter();
  try {
    for (const step of steps) {
      await runner.run({ argv: step.argv });
      reverter.add(async () => {
        for (const argv of step.undo) await runner.run({ argv });
      });
    }
    reverter.success();
  } finally {
    await reverter.revert();
  }
}
