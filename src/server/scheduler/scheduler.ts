import { ApiError } from '../../api/errors.ts';
import type { MachineTypeSpec } from '../../api/kinds/machine-type.ts';
import type { NodeSpec, NodeStatus } from '../../api/kinds/node.ts';
import type { VmSpec, VmStatus } from '../../api/kinds/vm.ts';
import type { AnyObject, Condition } from '../../api/object.ts';
import type { Clock } from '../../base/clock.ts';
import type { Logger } from '../../base/logger.ts';
import { listAll } from '../../store/list-all.ts';
import type { StatusWrite, Store } from '../../store/store.ts';
import { Placement, type NodeInfo, type PlacementRequest } from './placement.ts';
import { runRestarting } from './run-restarting.ts';

const author = { author: 'system:scheduler' };

/** What one batch of bindings may take from its decisions to its commit (DESIGN.md §10: p99 ≤ 20 ms), with room for a slow fsync. */
const batchBudgetMs = 15;
const minBatch = 64;
const maxBatch = 4096;

/** Node facts placement needs, from a node object. */
export function nodeInfo(doc: AnyObject): NodeInfo {
  const spec = doc.spec as NodeSpec;
  const status = doc.status as NodeStatus;
  return {
    name: doc.name,
    site: spec.site,
    arch: spec.arch,
    labels: doc.labels,
    cpus: spec.capacity.cpus,
    memoryMiB: spec.capacity.memoryMiB,
    cpuRatio: spec.overcommit?.cpu ?? 1,
    memoryRatio: spec.overcommit?.memory ?? 1,
    schedulable: !spec.unschedulable && (status.phase ?? 'ready') === 'ready',
  };
}

interface Bound {
  node: string;
  req: PlacementRequest;
}

/** A decision waiting for its commit: the status write, the node it binds to (if placed), and when it was made. */
interface Decision {
  write: StatusWrite;
  placed: boolean;
  decided: number;
}

/**
 * Binds pending VMs to nodes: keeps the bin state in memory from a list and a
 * watch of VMs, nodes and machine types, and writes each decision as the VM's
 * status (`phase: scheduled`, `node`) with If-Match, so a VM that changed
 * meanwhile is simply looked at again. A VM that fits nowhere, or whose NICs
 * IPAM could not address, stays `pending` with a `Scheduled=false` condition
 * saying why; VMs with NICs are placed only once IPAM wrote their addresses.
 */
export class Scheduler {
  private readonly placement = new Placement();
  private readonly machineTypes = new Map<string, MachineTypeSpec>();
  private readonly images = new Map<string, string | undefined>();
  private readonly bound = new Map<string, Bound>();
  /** Pending VMs by id, latest version. */
  private readonly queue = new Map<string, AnyObject>();
  /** Unschedulable VMs, retried when nodes change. */
  private readonly waiting = new Map<string, AnyObject>();
  private wake: (() => void) | undefined;
  /** VMs decided and committed together; tuned to `batchBudgetMs`. */
  private batchSize = 128;

  constructor(
    private readonly deps: {
      store: Store;
      logger: Logger;
      clock: Clock;
      /** Called with the time from a decision to its durable commit (metrics, benchmarks). */
      observeCommit?: (ms: number) => void;
    },
  ) {}

  /** Runs until the signal aborts. */
  run(signal: AbortSignal): Promise<void> {
    return runRestarting((s) => this.session(s), { what: 'scheduler', logger: this.deps.logger, clock: this.deps.clock, signal });
  }

  /** Reads the bin state from lists; returns the revision to watch from. The lists are not kept: only pending VMs stay in memory. */
  private async load(): Promise<number> {
    const nodes = await listAll(this.deps.store, { kind: 'node' });
    const mts = await listAll(this.deps.store, { kind: 'machine-type' });
    const images = await listAll(this.deps.store, { kind: 'image', project: '*' });
    const vms = await listAll(this.deps.store, { kind: 'vm', project: '*' });
    for (const n of nodes.items) this.placement.setNode(nodeInfo(n));
    for (const m of mts.items) this.machineTypes.set(m.name, m.spec as MachineTypeSpec);
    for (const i of images.items) this.images.set(`${i.project}/${i.name}`, (i.spec as { arch?: string }).arch);
    for (const v of vms.items) this.observeVm(v);
    return Math.min(nodes.revision, mts.revision, images.revision, vms.revision);
  }

  /** One list + watch; a failed batch commit ends it (and its watch), so that the next session relists. */
  private async session(signal: AbortSignal): Promise<void> {
    const from = await this.load();
    const ac = new AbortController();
    const stop = () => ac.abort();
    signal.addEventListener('abort', stop, { once: true });
    let failure: unknown;
    const events = this.deps.store.watch({ kinds: ['vm', 'node', 'machine-type', 'image'], fromRevision: from }, ac.signal);
    const pump = this.drain(ac.signal).catch((e: unknown) => {
      failure = e;
      ac.abort();
    });
    try {
      for await (const ev of events) {
        if (ev.type === 'bookmark') continue;
        const o = ev.object;
        switch (o.kind) {
          case 'node':
            if (ev.type === 'delete') this.placement.removeNode(o.name);
            else this.placement.setNode(nodeInfo(o));
            this.retryWaiting();
            break;
          case 'machine-type':
            if (ev.type === 'delete') this.machineTypes.delete(o.name);
            else this.machineTypes.set(o.name, o.spec as MachineTypeSpec);
            break;
          case 'image':
            if (ev.type === 'delete') this.images.delete(`${o.project}/${o.name}`);
            else this.images.set(`${o.project}/${o.name}`, (o.spec as { arch?: string }).arch);
            break;
          case 'vm':
            if (ev.type === 'delete') this.forget(o.id);
            else this.observeVm(o);
            break;
        }
        this.wake?.();
      }
    } finally {
      signal.removeEventListener('abort', stop);
      ac.abort();
      this.wake?.();
      await pump;
    }
    if (failure) throw failure;
  }

  private forget(id: string): void {
    const b = this.bound.get(id);
    if (b) this.placement.account(b.node, b.req, -1);
    this.bound.delete(id);
    this.queue.delete(id);
    this.waiting.delete(id);
  }

  private observeVm(vm: AnyObject): void {
    const status = vm.status as VmStatus;
    const node = status.node;
    if (!node) {
      if (status.phase === 'deleting') return;
      this.forget(vm.id);
      // Until IPAM answers, its status write brings the VM back here.
      if (addressWait(vm) !== '') this.queue.set(vm.id, vm);
      return;
    }
    const b = this.bound.get(vm.id);
    if (b?.node === node) return;
    this.forget(vm.id);
    const req = this.request(vm);
    if (!req) return;
    this.placement.account(node, req, 1);
    this.bound.set(vm.id, { node, req });
  }

  private retryWaiting(): void {
    for (const [id, vm] of this.waiting) this.queue.set(id, vm);
    this.waiting.clear();
  }

  /** What a VM asks of a node; undefined while its machine type is unknown. */
  private request(vm: AnyObject): PlacementRequest | undefined {
    const spec = vm.spec as VmSpec;
    const mt = this.machineTypes.get(spec.machineType);
    if (!mt) return undefined;
    const p = spec.placement ?? {};
    const arch = this.images.get(`${vm.project}/${spec.image}`);
    return {
      cpus: spec.resources?.cpus ?? mt.cpus,
      memoryMiB: spec.resources?.memoryMiB ?? mt.memoryMiB,
      ...(arch ? { arch } : {}),
      ...(p.site ? { site: p.site } : {}),
      ...(p.node ? { node: p.node } : {}),
      ...(p.requiredLabels ? { requiredLabels: p.requiredLabels } : {}),
      ...(p.preferredLabels ? { preferredLabels: p.preferredLabels } : {}),
      ...(p.spreadKey ? { spreadKey: `${vm.project}/${p.spreadKey}` } : {}),
    };
  }

  private async drain(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (this.queue.size === 0) {
        await new Promise<void>((r) => (this.wake = r));
        this.wake = undefined;
        continue;
      }
      // Each batch is one group commit: bigger ones spread its fsync over more VMs, smaller ones commit sooner.
      const batch: AnyObject[] = [];
      for (const [id, vm] of this.queue) {
        batch.push(vm);
        this.queue.delete(id);
        if (batch.length === this.batchSize) break;
      }
      const started = performance.now();
      await this.bind(batch.map((vm) => this.decide(vm)).filter((d) => d !== undefined));
      if (batch.length === this.batchSize) this.batchSize = nextBatchSize(this.batchSize, performance.now() - started);
    }
  }

  /** Commits a batch of decisions in one store call; a VM that changed or went away meanwhile is simply looked at again. */
  private async bind(decisions: Decision[]): Promise<void> {
    if (!decisions.length) return;
    let results;
    try {
      results = await this.deps.store.updateStatuses(decisions.map((d) => d.write), author);
    } catch (e) {
      for (const d of decisions) if (d.placed) this.forget(d.write.ref.idOrName);
      throw e;
    }
    const committed = performance.now();
    let failure: ApiError | undefined;
    results.forEach((r, i) => {
      const d = decisions[i]!;
      if (r.ok) return this.deps.observeCommit?.(committed - d.decided);
      if (d.placed) this.forget(d.write.ref.idOrName);
      if (r.error.code !== 'precondition_failed' && r.error.code !== 'not_found') failure ??= r.error;
    });
    if (failure) throw failure;
  }

  /** Places a VM in the bin state, or says why not; the status to write, undefined when there is nothing to write. */
  private decide(vm: AnyObject): Decision | undefined {
    const addressless = addressWait(vm);
    if (addressless === '') return;
    const req = this.request(vm);
    const status = vm.status as VmStatus;
    const result =
      addressless !== undefined
        ? { ok: false as const, reason: addressless }
        : req
          ? this.placement.place(req)
          : { ok: false as const, reason: `machine type "${(vm.spec as VmSpec).machineType}" is unknown` };
    const now = new Date(this.deps.clock.now()).toISOString();
    let next: VmStatus;
    if (result.ok) {
      this.bound.set(vm.id, { node: result.node, req: req! });
      next = { ...status, phase: 'scheduled', node: result.node, conditions: withCondition(status.conditions, { type: 'Scheduled', status: 'true', reason: 'Placed', message: `placed on node "${result.node}"`, lastTransition: now }) };
    } else {
      // Node changes may make room; addresses come back through IPAM's status write instead.
      if (addressless === undefined) this.waiting.set(vm.id, vm);
      const reason = addressless === undefined ? 'Unschedulable' : 'WaitingForAddresses';
      const cond: Condition = { type: 'Scheduled', status: 'false', reason, message: result.reason, lastTransition: now };
      const old = status.conditions?.find((c) => c.type === 'Scheduled');
      if (status.phase === 'pending' && old?.status === 'false' && old.message === result.reason) return;
      next = { ...status, phase: 'pending', conditions: withCondition(status.conditions, cond) };
    }
    return {
      write: { ref: { kind: 'vm', idOrName: vm.id }, status: next as Record<string, unknown>, ifRevision: vm.revision },
      placed: result.ok,
      decided: performance.now(),
    };
  }
}

/**
 * The size of the next batch of bindings after a full one took `commitMs`
 * from its decisions to its commit: grown while commits stay well within
 * the budget (spreading each fsync over more VMs), shrunk when one takes
 * longer, within [minBatch, maxBatch]. A faster store thus turns into
 * throughput without giving up latency.
 */
export function nextBatchSize(size: number, commitMs: number): number {
  if (commitMs > batchBudgetMs) return Math.max(minBatch, Math.floor(size * 0.75));
  if (commitMs < batchBudgetMs * 0.75) return Math.min(maxBatch, Math.ceil(size * 1.1));
  return size;
}

/**
 * Whether a VM must wait for IPAM before it is placed, so that no host ever
 * sees a VM without its addresses: undefined when every NIC has its
 * addresses (or there are no NICs), IPAM's reason when it could not assign
 * them (pool dry, static address taken), '' while IPAM has not answered yet.
 */
export function addressWait(vm: Pick<AnyObject, 'spec' | 'status'>): string | undefined {
  const nics = (vm.spec as VmSpec).nics ?? [];
  if (!nics.length) return undefined;
  const status = vm.status as VmStatus;
  const failed = status.conditions?.find((c) => c.type === 'Addressed' && c.status === 'false');
  if (failed) return failed.message ?? 'its addresses cannot be assigned';
  return nics.every((_, i) => status.addresses?.some((a) => a.nic === i)) ? undefined : '';
}

function withCondition(list: Condition[] | undefined, c: Condition): Condition[] {
  return [...(list ?? []).filter((x) => x.type !== c.type), c];
}
