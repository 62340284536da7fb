import { readdirSync } from 'node:fs';
import type { Runner } from '../base/runner.ts';
import { RulesetApplier, type RulesetApply } from './apply-ruleset.ts';
import { applyTc } from './apply-tc.ts';
import { renderDnsmasq, type DnsmasqOptions } from './dnsmasq-config.ts';
import { applyDnsmasq, stopDnsmasq, type DnsmasqDeps, type DnsmasqOutcome } from './dnsmasq-process.ts';
import { runHostSteps } from './host-step.ts';
import { planLinks, type NetworkLinks } from './link-plan.ts';
import { readLinkState } from './link-state.ts';
import { buildRuleset, type RulesetOptions } from './nft-ruleset.ts';
import { planTc, type NicBandwidth } from './tc-plan.ts';

/** Everything this host's networking should be, as the agent derives it from its VMs. */
export interface HostNetworkSpec {
  links: NetworkLinks[];
  ruleset: RulesetOptions;
  bandwidth: NicBandwidth[];
  /** One per network that serves DHCP/RA here; all share `dnsmasqRunDir`. */
  dnsmasq: DnsmasqOptions[];
  dnsmasqRunDir: string;
}

/** How much each layer changed (0 everywhere when the host was in sync). */
export interface HostNetworkResult {
  ruleset: RulesetApply;
  linkChanges: number;
  tcChanges: number;
  dnsmasq: Record<string, DnsmasqOutcome | 'stopped'>;
}

/**
 * Converges the host in a safe order: the ruleset first (it names
 * interfaces, so it can exist before them and a new tap is never unguarded),
 * then links, bandwidth limits, and dnsmasq per network — stopping those of
 * networks that left. Every input is rendered or planned before the first change.
 * Pass the same `ruleset` applier on every call for a host so that firewall
 * changes go as deltas; without one the tables are replaced whole each time.
 */
export async function applyHostNetwork(
  spec: HostNetworkSpec,
  deps: Omit<DnsmasqDeps, 'runner'> & { runner: Runner; ruleset?: RulesetApplier },
): Promise<HostNetworkResult> {
  for (const d of spec.dnsmasq)
    if (d.runDir !== spec.dnsmasqRunDir) throw new Error(`Cannot apply network "${d.network}": its dnsmasq run dir differs from "${spec.dnsmasqRunDir}"`);
  const model = buildRuleset(spec.ruleset);
  const linkSteps = planLinks(spec.links, await readLinkState(deps.runner));
  planTc(spec.bandwidth, { qdiscs: new Map(), ifbs: new Map() });
  for (const d of spec.dnsmasq) renderDnsmasq(d);
  const ruleset = await (deps.ruleset ?? new RulesetApplier()).apply(deps.runner, model);
  await runHostSteps(deps.runner, linkSteps);
  const tcChanges = await applyTc(deps.runner, spec.bandwidth);
  const dnsmasq: HostNetworkResult['dnsmasq'] = {};
  for (const d of spec.dnsmasq) dnsmasq[d.network] = await applyDnsmasq(d, deps);
  let existing: string[] = [];
  try {
    existing = readdirSync(spec.dnsmasqRunDir).filter((f) => f.endsWith('.conf')).map((f) => f.slice(0, -'.conf'.length));
  } catch {
    existing = [];
  }
  for (const network of existing.filter((n) => !(n in dnsmasq)).sort()) {
    await stopDnsmasq({ network, runDir: spec.dnsmasqRunDir }, deps);
    dnsmasq[network] = 'stopped';
  }
  return { ruleset, linkChanges: linkSteps.length, tcChanges, dnsmasq };
}
