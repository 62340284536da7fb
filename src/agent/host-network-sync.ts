import type { HostNetworkView } from '../api/kinds/network.ts';
import type { AnyObject } from '../api/object.ts';
import type { Clock } from '../base/clock.ts';
import type { Logger } from '../base/logger.ts';
import type { HostNetworkSpec } from '../net/host-network.ts';
import { desiredHostNetwork, type HostNetworkOptions } from './host-network.ts';
import type { DesiredVm } from './reconcile.ts';

/** What the agent's host networking needs from the outside world. */
export interface HostNetworkSyncDeps {
  options: HostNetworkOptions;
  /** The node's view from the server (`GET /v1/nodes/{node}/network`). */
  fetchView(): Promise<HostNetworkView>;
  /** Converges the host (src/net's applyHostNetwork in production). */
  apply(spec: HostNetworkSpec): Promise<unknown>;
  clock: Clock;
  logger: Logger;
  /** How often the view is refetched, so firewall changes arrive (default 5 s). */
  refreshMs?: number;
  /** An unchanged spec is still reapplied this often, repairing drift (default 60 s). */
  reapplyMs?: number;
}

/** The taps of the VMs that may start, and why the others may not. */
export interface NetworkReadiness {
  nics: Map<string, { tap: string; mac: string }[]>;
  /** Not ready yet (no view, no VNI, no addresses): the VM waits, reported provisioning. */
  waiting: Map<string, string>;
  /** The host could not be converged: the VM is held failed with the error. */
  problems: Map<string, string>;
}

/** A VM's desired state with its taps, or held with the network's reason (a running VM is left running). */
export function withNics(d: DesiredVm, net: NetworkReadiness | undefined): DesiredVm {
  const problem = net?.problems.get(d.id) ?? net?.waiting.get(d.id);
  if (problem && d.config) return { id: d.id, power: d.power, restartPolicy: d.restartPolicy, problem };
  const nics = net?.nics.get(d.id);
  return nics && d.config ? { ...d, config: { ...d.config, nics } } : d;
}

/**
 * The agent's host networking: keeps the server's network view fresh
 * (polling, and early when a VM changes), and converges the host before VMs
 * start so their taps exist. A spec is applied when it changed (a firewall
 * edit re-renders only the ruleset, no VM restarts) and periodically.
 */
export class HostNetworkSync {
  private view: HostNetworkView | undefined;
  private applied: string | undefined;
  private appliedAt = 0;
  /** Set once a spec with networks was applied: until then an empty host is left alone (no root needed). */
  private touched = false;
  private wakeFetch: (() => void) | undefined;
  /** Each VM's last version whose NICs were all ready: its taps stay while a newer version waits for its network. */
  private readonly lastReady = new Map<string, AnyObject>();

  constructor(private readonly d: HostNetworkSyncDeps) {}

  /** The server's network view as last fetched (the metadata service reads subnets, gateways and DNS from it). */
  get currentView(): HostNetworkView | undefined {
    return this.view;
  }

  /** This host's VXLAN address, reported in the node's status so peers find it. */
  get underlayIp(): string | undefined {
    return this.d.options.underlayIp;
  }

  /** Fetches the view until the signal aborts, calling `changed` when it differs. */
  async run(signal: AbortSignal, changed: () => void): Promise<void> {
    let last = '';
    while (!signal.aborted) {
      try {
        const view = await this.d.fetchView();
        const text = JSON.stringify(view);
        if (text !== last) {
          last = text;
          this.view = view;
          changed();
        }
      } catch (e) {
        if (!signal.aborted) this.d.logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'cannot fetch the network view; keeping the last one');
      }
      const ac = new AbortController();
      const stop = () => ac.abort();
      signal.addEventListener('abort', stop, { once: true });
      this.wakeFetch = stop;
      await this.d.clock.sleep(this.d.refreshMs ?? 5000, ac.signal).catch(() => undefined);
      signal.removeEventListener('abort', stop);
    }
  }

  /** Refetches the view now (a VM bound here changed). */
  poke(): void {
    this.wakeFetch?.();
  }

  /**
   * The taps `converge` would leave on the host for these VMs, or undefined
   * when it would not touch the host: a running guest's NIC on any other tap
   * is unplugged before its tap goes.
   */
  plannedTaps(vms: AnyObject[]): Set<string> | undefined {
    const { spec } = this.plan(vms);
    if (!this.view || (!this.touched && spec.links.length === 0)) return undefined;
    return new Set(spec.links.flatMap((l) => l.ports.filter((p) => p.kind === 'tap').map((p) => p.name)));
  }

  /**
   * The host network for these VMs, and which are ready. A VM whose new NIC
   * waits for its addresses (or whose network the view does not list yet)
   * keeps the taps of its last ready version: its running guest's NICs stay connected.
   */
  private plan(vms: AnyObject[]): { spec: HostNetworkSpec; want: NetworkReadiness } {
    const desired = desiredHostNetwork(vms, this.view, this.d.options);
    const want: NetworkReadiness = { nics: desired.nics, waiting: desired.problems, problems: new Map() };
    if (![...desired.problems.keys()].some((id) => this.lastReady.has(id))) return { spec: desired.spec, want };
    const held = vms.map((vm) => (desired.problems.has(vm.id) ? (this.lastReady.get(vm.id) ?? vm) : vm));
    return { spec: desiredHostNetwork(held, this.view, this.d.options).spec, want };
  }

  /** Converges the host for these VMs; on failure every VM with ready NICs is held with the error. */
  async converge(vms: AnyObject[]): Promise<NetworkReadiness> {
    for (const id of this.lastReady.keys()) if (!vms.some((vm) => vm.id === id)) this.lastReady.delete(id);
    const { spec, want } = this.plan(vms);
    for (const vm of vms) if (want.nics.has(vm.id)) this.lastReady.set(vm.id, vm);
    if (!this.view || (!this.touched && spec.links.length === 0)) return want;
    const text = JSON.stringify(spec);
    const now = this.d.clock.now();
    if (text === this.applied && now - this.appliedAt < (this.d.reapplyMs ?? 60_000)) return want;
    try {
      await this.d.apply(spec);
      this.applied = text;
      this.appliedAt = now;
      this.touched = true;
      return want;
    } catch (e) {
      this.applied = undefined;
      const why = `cannot set up the host network: ${e instanceof Error ? e.message : String(e)}`;
      this.d.logger.error({ err: why }, 'host network not applied');
      return { nics: new Map(), waiting: want.waiting, problems: new Map([...want.nics.keys()].map((id) => [id, why])) };
    }
  }
}
