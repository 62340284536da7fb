import { ApiError } from '../../api/errors.ts';
import type { HostNetworkView } from '../../api/kinds/network.ts';
import type { Clock } from '../../base/clock.ts';
import type { Logger } from '../../base/logger.ts';
import { listAll } from '../../store/list-all.ts';
import type { Store } from '../../store/store.ts';
import { NetworkIndex, type ViewDep } from './network-index.ts';
import { runRestarting } from '../scheduler/run-restarting.ts';

/** How long a request waits for the index to catch up with the store before it is refused as `unavailable`. */
const catchUpMs = 10_000;

interface CachedView {
  view: HostNetworkView;
  json?: string;
}

/**
 * Node network views, cached: an index of VMs, nodes, networks and
 * firewalls kept from one list and a watch of every kind, and one view per
 * node kept until a change touches what it was built from. Agents polling an
 * unchanged store (or one where only other nodes' VMs changed state) cost a
 * map lookup each. A request first waits until the index has applied every
 * change up to the store's revision at that moment, so a view never misses a
 * write that completed before it was asked for.
 */
export class NetworkViews {
  private index = new NetworkIndex();
  private readonly views = new Map<string, CachedView>();
  private readonly dependents = new Map<ViewDep, Set<string>>();
  /** Revision of the last change applied; -1 while (re)loading. */
  private applied = -1;
  private waiters: { revision: number; resolve: () => void }[] = [];

  constructor(private readonly deps: { store: Store; logger: Logger; clock: Clock }) {}

  /** Keeps the index current until the signal aborts, relisting after errors (a watch that fell behind gets `gone`). */
  run(signal: AbortSignal): Promise<void> {
    return runRestarting((s) => this.session(s), { what: 'network views', logger: this.deps.logger, clock: this.deps.clock, signal });
  }

  private async session(signal: AbortSignal): Promise<void> {
    this.index = new NetworkIndex();
    this.views.clear();
    this.dependents.clear();
    this.applied = -1;
    const lists = await Promise.all(['vm', 'node', 'network', 'firewall'].map((kind) => listAll(this.deps.store, { kind, project: '*' })));
    for (const l of lists) for (const o of l.items) this.index.apply('put', o);
    const from = Math.min(...lists.map((l) => l.revision));
    this.advance(from);
    // Every kind, so that `applied` follows the store's revision counter exactly.
    for await (const ev of this.deps.store.watch({ fromRevision: from }, signal)) {
      if (ev.type === 'bookmark') continue;
      for (const d of this.index.apply(ev.type, ev.object)) {
        for (const node of this.dependents.get(d) ?? []) this.views.delete(node);
        this.dependents.delete(d);
      }
      this.advance(ev.revision);
    }
  }

  private advance(revision: number): void {
    this.applied = revision;
    if (!this.waiters.length) return;
    const due = this.waiters.filter((w) => w.revision <= revision);
    this.waiters = this.waiters.filter((w) => w.revision > revision);
    for (const w of due) w.resolve();
  }

  private async caughtUp(node: string, revision: number): Promise<void> {
    if (this.applied >= revision) return;
    const ac = new AbortController();
    const waiter = { revision, resolve: () => ac.abort() };
    this.waiters.push(waiter);
    const late = await this.deps.clock.sleep(catchUpMs, ac.signal).then(
      () => true,
      () => false,
    );
    if (!late) return;
    this.waiters = this.waiters.filter((w) => w !== waiter);
    throw new ApiError('unavailable', `Cannot compute the network view of node "${node}": the server is still catching up with the store; try again`);
  }

  /** The view of one node, as of at least the store's revision when asked. */
  async view(node: string): Promise<HostNetworkView> {
    return (await this.entry(node)).view;
  }

  /** The same view as JSON text, serialized once per version so that a poll of an unchanged view costs no serialization. */
  async json(node: string): Promise<string> {
    const e = await this.entry(node);
    return (e.json ??= JSON.stringify(e.view));
  }

  private async entry(node: string): Promise<CachedView> {
    await this.caughtUp(node, await this.deps.store.revision());
    const cached = this.views.get(node);
    if (cached) return cached;
    const { view, deps } = this.index.view(node);
    for (const d of deps) {
      let s = this.dependents.get(d);
      if (!s) this.dependents.set(d, (s = new Set()));
      s.add(node);
    }
    const e: CachedView = { view };
    this.views.set(node, e);
    return e;
  }
}
