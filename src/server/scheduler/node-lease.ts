import type { NodeStatus } from '../../api/kinds/node.ts';
import type { AnyObject } from '../../api/object.ts';
import type { Clock } from '../../base/clock.ts';
import type { Logger } from '../../base/logger.ts';
import type { Store } from '../../store/store.ts';

/** Whether a ready node's lease (its last heartbeat plus `leaseMs`) has run out. */
export function leaseExpired(node: AnyObject, now: number, leaseMs: number): boolean {
  const s = node.status as NodeStatus;
  if ((s.phase ?? 'ready') !== 'ready') return false;
  const seen = s.lastSeen ? Date.parse(s.lastSeen) : NaN;
  return Number.isNaN(seen) || now - seen > leaseMs;
}

/**
 * Marks nodes whose heartbeat stopped `unreachable`. That only keeps new VMs
 * away: nothing is rescheduled, so a VM with local disks never runs twice.
 * A node that heartbeats again sets itself `ready`.
 */
export async function sweepLeases(deps: { store: Store; clock: Clock; logger: Logger }, leaseMs: number): Promise<string[]> {
  const now = deps.clock.now();
  const marked: string[] = [];
  let cont: string | undefined;
  do {
    const page = await deps.store.list({ kind: 'node', limit: 1000, ...(cont ? { continue: cont } : {}) });
    for (const n of page.items.filter((x) => leaseExpired(x, now, leaseMs))) {
      try {
        await deps.store.updateStatus({ kind: 'node', idOrName: n.id }, { ...n.status, phase: 'unreachable' }, { author: 'system:lease', reason: `no heartbeat for ${Math.round(leaseMs / 1000)} s`, ifRevision: n.revision });
        marked.push(n.name);
        deps.logger.warn({ node: n.name }, 'node lease expired; marked unreachable');
      } catch {
        // A heartbeat raced the sweep: the node is alive.
      }
    }
    cont = page.continue;
  } while (cont);
  return marked;
}

/** Sweeps every `leaseMs / 3` until the signal aborts. */
export async function runLeaseMonitor(deps: { store: Store; clock: Clock; logger: Logger }, leaseMs: number, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    await sweepLeases(deps, leaseMs).catch((e: unknown) => deps.logger.error({ err: String(e) }, 'lease sweep failed'));
    await deps.clock.sleep(Math.max(1000, leaseMs / 3), signal).catch(() => undefined);
  }
}
