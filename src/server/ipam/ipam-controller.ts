import { ApiError } from '../../api/errors.ts';
import type { NetworkSpec } from '../../api/kinds/network.ts';
import type { VmSpec, VmStatus } from '../../api/kinds/vm.ts';
import type { AnyObject, Condition } from '../../api/object.ts';
import type { Clock } from '../../base/clock.ts';
import type { Logger } from '../../base/logger.ts';
import { listAll } from '../../store/list-all.ts';
import type { Store } from '../../store/store.ts';
import { AddressBook, type IpamVm, type NicAddress } from './address-book.ts';
import { runRestarting } from '../scheduler/run-restarting.ts';

const author = { author: 'system:ipam' };
const key = (project: string | undefined, name: string) => `${project ?? ''}/${name}`;

/** The lowest VNI no network uses yet. */
export function freeVni(networks: Iterable<AnyObject>): number {
  const used = new Set<unknown>();
  for (const n of networks) used.add((n.spec as NetworkSpec).vni ?? n.status.vni);
  let v = 1;
  while (used.has(v)) v++;
  return v;
}

/**
 * IPAM in the server: watches networks and VMs, gives every network a VNI
 * (`status.vni`) when its spec names none, and every VM NIC a MAC and
 * addresses (`status.addresses`). A VM whose addresses cannot be assigned
 * (pool dry, static address taken) gets an `Addressed=false` condition
 * saying why, and the scheduler keeps it pending; it is retried when
 * addresses free up (a VM deleted or readdressed, a network edited).
 */
export class IpamController {
  private readonly book = new AddressBook();
  private readonly networks = new Map<string, AnyObject>();
  /** VMs whose last assignment failed, latest version, retried on every change. */
  private readonly failing = new Map<string, AnyObject>();
  /** The latest version of every VM with NICs, so a network edit re-checks its VMs. */
  private readonly vms = new Map<string, AnyObject>();

  constructor(private readonly deps: { store: Store; logger: Logger; clock: Clock }) {}

  /** Runs until the signal aborts, restarting its watch after errors. */
  run(signal: AbortSignal): Promise<void> {
    return runRestarting((s) => this.session(s), { what: 'IPAM', logger: this.deps.logger, clock: this.deps.clock, signal });
  }

  private async session(signal: AbortSignal): Promise<void> {
    const nets = await listAll(this.deps.store, { kind: 'network', project: '*' });
    const vms = await listAll(this.deps.store, { kind: 'vm', project: '*' });
    this.networks.clear();
    for (const n of nets.items) this.networks.set(key(n.project, n.name), n);
    for (const vm of vms.items) this.book.adopt(ipamVm(vm));
    for (const n of nets.items) await this.network(n);
    for (const vm of vms.items) await this.vm(vm);
    const events = this.deps.store.watch({ kinds: ['network', 'vm'], fromRevision: Math.min(nets.revision, vms.revision) }, signal);
    for await (const ev of events) {
      if (ev.type === 'bookmark') continue;
      const o = ev.object;
      if (o.kind === 'network') {
        if (ev.type === 'delete') this.networks.delete(key(o.project, o.name));
        else {
          await this.network(o);
          // A changed subnet, range or reservation may move the addresses of the VMs on it.
          for (const vm of [...this.vms.values()]) if (((vm.spec as VmSpec).nics ?? []).some((n) => n.network === o.name && vm.project === o.project)) await this.vm(vm);
        }
      } else if (ev.type === 'delete') {
        this.book.release(o.id);
        this.failing.delete(o.id);
        this.vms.delete(o.id);
      } else if (!(await this.vm(o))) continue;
      // A deleted VM, an edited network or a VM that let go of addresses may have freed what a failing VM waits for.
      for (const vm of [...this.failing.values()]) await this.vm(vm);
    }
  }

  private async network(n: AnyObject): Promise<void> {
    this.networks.set(key(n.project, n.name), n);
    if ((n.spec as NetworkSpec).vni !== undefined || n.status.vni !== undefined) return;
    const vni = freeVni(this.networks.values());
    try {
      const updated = await this.deps.store.updateStatus({ kind: 'network', idOrName: n.id }, { ...n.status, vni }, { ...author, ifRevision: n.revision });
      this.networks.set(key(n.project, n.name), updated);
    } catch (e) {
      if (!(e instanceof ApiError && (e.code === 'precondition_failed' || e.code === 'not_found'))) throw e;
    }
  }

  /** Assigns a VM's addresses and writes them; true when it let go of addresses it held. */
  private async vm(vm: AnyObject): Promise<boolean> {
    const status = vm.status as VmStatus;
    const nics = (vm.spec as VmSpec).nics ?? [];
    if (nics.length) this.vms.set(vm.id, vm);
    else this.vms.delete(vm.id);
    if (status.phase === 'deleting' || (nics.length === 0 && !status.addresses)) return false;
    const lookup = (p: string, n: string) => this.networks.get(key(p, n))?.spec as NetworkSpec | undefined;
    const gatewayOf = (p: string, n: string) => {
      const gw = (this.networks.get(key(p, n))?.spec as NetworkSpec | undefined)?.gateway;
      return gw?.mode === 'vm' ? gw.vm : undefined;
    };
    let next: VmStatus;
    let freed = false;
    try {
      const addresses: NicAddress[] = this.book.assign(ipamVm(vm), lookup, gatewayOf);
      freed = (status.addresses ?? []).some((a) => !addresses.some((b) => b.mac === a.mac && b.ipv4 === a.ipv4));
      this.failing.delete(vm.id);
      next = { ...status, addresses, conditions: (status.conditions ?? []).filter((c) => c.type !== 'Addressed') };
      if (!next.conditions!.length) delete next.conditions;
      if (!addresses.length) delete next.addresses;
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      this.failing.set(vm.id, vm);
      const old = status.conditions?.find((c) => c.type === 'Addressed');
      if (old?.message === e.message) return false;
      const cond: Condition = { type: 'Addressed', status: 'false', reason: 'AddressesUnavailable', message: e.message, lastTransition: new Date(this.deps.clock.now()).toISOString() };
      next = { ...status, conditions: [...(status.conditions ?? []).filter((c) => c.type !== 'Addressed'), cond] };
    }
    if (JSON.stringify(next) === JSON.stringify(status)) return freed;
    try {
      await this.deps.store.updateStatus({ kind: 'vm', idOrName: vm.id }, next as Record<string, unknown>, { ...author, ifRevision: vm.revision });
    } catch (e) {
      if (!(e instanceof ApiError && (e.code === 'precondition_failed' || e.code === 'not_found'))) throw e;
    }
    return freed;
  }
}

function ipamVm(vm: AnyObject): IpamVm {
  const current = (vm.status as VmStatus).addresses;
  return { id: vm.id, project: vm.project ?? '', name: vm.name, nics: (vm.spec as VmSpec).nics ?? [], ...(current ? { current } : {}) };
}
