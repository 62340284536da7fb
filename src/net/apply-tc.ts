import type { Runner } from '../base/runner.ts';
import { runHostSteps } from './host-step.ts';
import { parseIpLinks } from './link-state.ts';
import { parseQdiscs, planTc, type NicBandwidth, type TcState } from './tc-plan.ts';

/** Reads qdiscs and crowdcloud's ifb devices. */
export async function readTcState(runner: Runner): Promise<TcState> {
  const qdiscs = parseQdiscs((await runner.run({ argv: ['tc', '-j', 'qdisc', 'show'] })).stdout || '[]');
  const links = parseIpLinks((await runner.run({ argv: ['ip', '-j', '-d', 'link', 'show', 'type', 'ifb'] })).stdout || '[]');
  const ifbs = new Map([...links].filter(([, l]) => l.alias?.startsWith('crowd:ifb:')));
  return { qdiscs, ifbs };
}

/** Brings every tap's bandwidth limits to `nics`, all-or-nothing; returns how many changes ran. */
export async function applyTc(runner: Runner, nics: NicBandwidth[]): Promise<number> {
  const steps = planTc(nics, await readTcState(runner));
  await runHostSteps(runner, steps);
  return steps.length;
}
