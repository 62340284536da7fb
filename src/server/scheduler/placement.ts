import { matchesSelector } from '../../api/selector.ts';

/** What placement knows of a node. */
export interface NodeInfo {
  name: string;
  site: string;
  arch: string;
  labels: Record<string, string>;
  cpus: number;
  memoryMiB: number;
  /** Overcommit ratios (1 = none). */
  cpuRatio: number;
  memoryRatio: number;
  /** Cordoned, unreachable or revoked nodes take no new VMs. */
  schedulable: boolean;
}

/** What one VM asks for. */
export interface PlacementRequest {
  cpus: number;
  memoryMiB: number;
  arch?: string;
  site?: string;
  node?: string;
  requiredLabels?: Record<string, string>;
  preferredLabels?: Record<string, string>;
  spreadKey?: string;
}

export type PlacementResult = { ok: true; node: string } | { ok: false; reason: string };

interface NodeState {
  info: NodeInfo;
  usedCpus: number;
  usedMemoryMiB: number;
  spread: Map<string, number>;
}

type Rejection = 'cordoned' | 'site' | 'arch' | 'labels' | 'cpu' | 'memory';

const rejectionText: Record<Rejection, string> = {
  cordoned: 'not schedulable',
  site: 'in another site',
  arch: 'of another architecture',
  labels: 'missing required labels',
  cpu: 'without enough free CPUs',
  memory: 'without enough free memory',
};

/**
 * Bin state and the placement decision. Nodes are scanned from a rotating
 * offset and the scan stops after `candidates` feasible nodes (Nomad's
 * "limit" idea), so one decision costs O(candidates) on a healthy cluster, not O(nodes).
 */
export class Placement {
  private readonly nodes = new Map<string, NodeState>();
  private order: NodeState[] = [];
  private offset = 0;

  constructor(private readonly opts: { candidates?: number } = {}) {}

  get size(): number {
    return this.nodes.size;
  }

  setNode(info: NodeInfo): void {
    const cur = this.nodes.get(info.name);
    if (cur) cur.info = info;
    else {
      const s: NodeState = { info, usedCpus: 0, usedMemoryMiB: 0, spread: new Map() };
      this.nodes.set(info.name, s);
      this.order.push(s);
    }
  }

  removeNode(name: string): void {
    const s = this.nodes.get(name);
    if (!s) return;
    this.nodes.delete(name);
    this.order = this.order.filter((x) => x !== s);
  }

  /** Records (sign 1) or releases (sign -1) a VM's use of a node. */
  account(node: string, req: Pick<PlacementRequest, 'cpus' | 'memoryMiB' | 'spreadKey'>, sign: 1 | -1): void {
    const s = this.nodes.get(node);
    if (!s) return;
    s.usedCpus += sign * req.cpus;
    s.usedMemoryMiB += sign * req.memoryMiB;
    if (req.spreadKey) {
      const n = (s.spread.get(req.spreadKey) ?? 0) + sign;
      if (n > 0) s.spread.set(req.spreadKey, n);
      else s.spread.delete(req.spreadKey);
    }
  }

  private reject(s: NodeState, req: PlacementRequest): Rejection | undefined {
    const n = s.info;
    if (!n.schedulable) return 'cordoned';
    if (req.site && n.site !== req.site) return 'site';
    if (req.arch && n.arch !== req.arch) return 'arch';
    if (req.requiredLabels && !matchesSelector(toSelector(req.requiredLabels), n.labels)) return 'labels';
    if (s.usedCpus + req.cpus > n.cpus * n.cpuRatio) return 'cpu';
    if (s.usedMemoryMiB + req.memoryMiB > n.memoryMiB * n.memoryRatio) return 'memory';
    return undefined;
  }

  /** Lower is better: spread first, then preferred labels, then how full the node would be. */
  private score(s: NodeState, req: PlacementRequest): number {
    const n = s.info;
    let score = 0;
    if (req.spreadKey) score += (s.spread.get(req.spreadKey) ?? 0) * 1000;
    if (req.preferredLabels)
      for (const [k, v] of Object.entries(req.preferredLabels)) if (n.labels[k] !== v) score += 10;
    const cpuFill = (s.usedCpus + req.cpus) / (n.cpus * n.cpuRatio);
    const memFill = (s.usedMemoryMiB + req.memoryMiB) / (n.memoryMiB * n.memoryRatio);
    return score + Math.max(cpuFill, memFill);
  }

  /** Chooses a node and accounts the VM on it, or says why none fits. */
  place(req: PlacementRequest): PlacementResult {
    if (req.node) {
      const s = this.nodes.get(req.node);
      if (!s) return { ok: false, reason: `node "${req.node}" does not exist` };
      const why = this.reject(s, req);
      if (why) return { ok: false, reason: `node "${req.node}" is ${rejectionText[why]}` };
      this.account(req.node, req, 1);
      return { ok: true, node: req.node };
    }
    const total = this.order.length;
    if (total === 0) return { ok: false, reason: 'no nodes are enrolled' };
    const limit = req.spreadKey || req.preferredLabels ? Math.max(16, this.opts.candidates ?? 0) : (this.opts.candidates ?? 4);
    const rejected = new Map<Rejection, number>();
    let best: NodeState | undefined;
    let bestScore = Infinity;
    let feasible = 0;
    const start = this.offset++ % total;
    for (let i = 0; i < total && feasible < limit; i++) {
      const s = this.order[(start + i) % total]!;
      const why = this.reject(s, req);
      if (why) {
        rejected.set(why, (rejected.get(why) ?? 0) + 1);
        continue;
      }
      feasible++;
      const sc = this.score(s, req);
      if (sc < bestScore) [best, bestScore] = [s, sc];
    }
    if (!best) {
      const parts = [...rejected].map(([why, n]) => `${n} ${rejectionText[why]}`);
      return { ok: false, reason: `0 of ${total} nodes fit: ${parts.join(', ')}` };
    }
    this.account(best.info.name, req, 1);
    return { ok: true, node: best.info.name };
  }
}

function toSelector(labels: Record<string, string>) {
  return Object.entries(labels).map(([key, value]) => ({ op: 'eq' as const, key, value }));
}
