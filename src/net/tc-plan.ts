import type { HostStep } from './host-step.ts';
import type { LinkInfo } from './link-state.ts';
import { compareText } from './compare-text.ts';
import { shortHash } from './short-hash.ts';
import { isInterfaceName } from './interface-name.ts';

/** Bandwidth limits of one NIC, seen from the guest: ingress reaches it, egress leaves it. */
export interface NicBandwidth {
  tap: string;
  ingressMbit?: number;
  egressMbit?: number;
}

/** The qdiscs crowdcloud cares about on one device. */
export interface DeviceQdiscs {
  /** Bytes/s of a root tbf with handle 1: (crowdcloud's), if there is one. */
  tbfRate?: number;
  ingress: boolean;
}

/** What the tc planner reads: qdiscs per device and crowdcloud's ifb devices. */
export interface TcState {
  qdiscs: Map<string, DeviceQdiscs>;
  /** ifb links by name (alias `crowd:ifb:<tap>`). */
  ifbs: Map<string, LinkInfo>;
}

/** Parses `tc -j qdisc show`. */
export function parseQdiscs(json: string): Map<string, DeviceQdiscs> {
  const out = new Map<string, DeviceQdiscs>();
  for (const q of JSON.parse(json) as { kind: string; handle: string; dev: string; root?: boolean; options?: { rate?: number } }[]) {
    const d = out.get(q.dev) ?? { ingress: false };
    if (q.kind === 'ingress') d.ingress = true;
    if (q.kind === 'tbf' && q.root && q.handle === '1:' && q.options?.rate !== undefined) d.tbfRate = q.options.rate;
    out.set(q.dev, d);
  }
  return out;
}

/** The ifb device that shapes what a tap's guest sends (a tap's own ingress can only be redirected, not shaped). */
export function ifbName(tap: string): string {
  return `ifb${shortHash(tap)}`;
}

function tbf(dev: string, mbit: number): string[] {
  const burst = Math.max(32768, Math.ceil((mbit * 125000) / 250));
  return ['tc', 'qdisc', 'replace', 'dev', dev, 'root', 'handle', '1:', 'tbf', 'rate', `${mbit}mbit`, 'burst', String(burst), 'latency', '50ms'];
}

/** Steps that give `dev` a root tbf of `mbit` (or take crowdcloud's away when undefined). */
function shape(dev: string, mbit: number | undefined, have: DeviceQdiscs | undefined): HostStep[] {
  const rate = have?.tbfRate;
  const del = ['tc', 'qdisc', 'del', 'dev', dev, 'root'];
  if (mbit === undefined) return rate === undefined ? [] : [{ argv: del, undo: [tbf(dev, rate / 125000)] }];
  if (rate === mbit * 125000) return [];
  return [{ argv: tbf(dev, mbit), undo: [rate === undefined ? del : tbf(dev, rate / 125000)] }];
}

function checkMbit(tap: string, what: string, mbit: number | undefined): void {
  if (mbit !== undefined && (!Number.isInteger(mbit) || mbit < 1 || mbit > 100_000))
    throw new Error(`Cannot plan bandwidth of tap "${tap}": ${what} ${mbit} Mbit/s is outside 1-100000`);
}

/**
 * Pure: tc and ip steps for per-tap limits. Towards the guest a tbf on the
 * tap's root; from the guest the tap's ingress is redirected (u32 + mirred)
 * to an ifb whose root tbf shapes it. `nics` lists every NIC on the host;
 * limits and ifbs of NICs without limits are removed.
 */
export function planTc(nics: NicBandwidth[], state: TcState): HostStep[] {
  const steps: HostStep[] = [];
  const keep = new Set<string>();
  for (const nic of [...nics].sort((a, b) => compareText(a.tap, b.tap))) {
    if (!isInterfaceName(nic.tap)) throw new Error(`Cannot plan bandwidth of tap "${nic.tap}": not a valid interface name`);
    checkMbit(nic.tap, 'ingress', nic.ingressMbit);
    checkMbit(nic.tap, 'egress', nic.egressMbit);
    const have = state.qdiscs.get(nic.tap);
    steps.push(...shape(nic.tap, nic.ingressMbit, have));
    const ifb = ifbName(nic.tap);
    if (nic.egressMbit === undefined) {
      if (have?.ingress) steps.push({ argv: ['tc', 'qdisc', 'del', 'dev', nic.tap, 'ingress'], undo: [] });
      continue;
    }
    keep.add(ifb);
    const link = state.ifbs.get(ifb);
    if (!link) {
      steps.push(
        { argv: ['ip', 'link', 'add', 'name', ifb, 'type', 'ifb'], undo: [['ip', 'link', 'del', ifb]] },
        { argv: ['ip', 'link', 'set', 'dev', ifb, 'alias', `crowd:ifb:${nic.tap}`], undo: [] },
      );
    }
    if (!link?.up) steps.push({ argv: ['ip', 'link', 'set', 'dev', ifb, 'up'], undo: [] });
    steps.push(...shape(ifb, nic.egressMbit, link ? state.qdiscs.get(ifb) : undefined));
    if (!have?.ingress) {
      steps.push(
        { argv: ['tc', 'qdisc', 'add', 'dev', nic.tap, 'handle', 'ffff:', 'ingress'], undo: [['tc', 'qdisc', 'del', 'dev', nic.tap, 'ingress']] },
        {
          argv: ['tc', 'filter', 'add', 'dev', nic.tap, 'parent', 'ffff:', 'protocol', 'all', 'u32', 'match', 'u32', '0', '0', 'action', 'mirred', 'egress', 'redirect', 'dev', ifb],
          undo: [],
        },
      );
    }
  }
  for (const name of [...state.ifbs.keys()].sort()) if (!keep.has(name)) steps.push({ argv: ['ip', 'link', 'del', name], undo: [] });
  return steps;
}
