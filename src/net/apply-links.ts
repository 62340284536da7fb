import type { Runner } from '../base/runner.ts';
import { runHostSteps } from './host-step.ts';
import { planLinks, type NetworkLinks } from './link-plan.ts';
import { readLinkState } from './link-state.ts';

/** Reads the host, plans, and runs the plan all-or-nothing; returns how many changes ran (0 when in sync). */
export async function applyLinks(runner: Runner, desired: NetworkLinks[]): Promise<number> {
  const steps = planLinks(desired, await readLinkState(runner));
  await runHostSteps(runner, steps);
  return steps.length;
}
