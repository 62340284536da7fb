import type { NicConfig, VmConfig, VmInfo } from './drivers/driver.ts';

/** What the server wants of one VM on this host, as cached locally. */
export interface DesiredVm {
  id: string;
  power: 'running' | 'stopped';
  restartPolicy: 'always' | 'on-failure' | 'never';
  /** Undefined when the VM cannot be built here (its problem is in `problem`). */
  config?: VmConfig;
  problem?: string;
}

/** Crash-restart bookkeeping per VM, kept by the executor. */
export interface RestartState {
  failures: number;
  /** Not before this time (ms since the epoch). */
  nextAt: number;
}

export type Step =
  | { op: 'start'; id: string; config: VmConfig; reason: 'create' | 'power-on' | 'restart' }
  | { op: 'stop'; id: string }
  | { op: 'destroy'; id: string }
  /** Hot-plug: unplug `detach` first (a tap may come back with another MAC), then plug in `attach`. */
  | { op: 'nics'; id: string; attach: NicConfig[]; detach: NicConfig[] }
  /** Nothing to do on the host; the VM's status says why. */
  | { op: 'hold'; id: string; phase: 'stopped' | 'failed'; message: string };

/**
 * The pure heart of the agent: desired VMs + what the driver reports →
 * the steps that bring them together.
 *
 *   desired running, absent      → start (create)
 *   desired running, running     → nics (hot-plug) when its NICs differ from the desired ones,
 *                                  leaving out changes that failed before (they wait for the next start)
 *   desired running, crashed     → start (restart) per restart policy and backoff, else hold failed
 *   desired running, powered off → start (power-on) if the driver stopped it or policy is always,
 *                                  else hold stopped (the guest chose to stop)
 *   desired stopped, running     → stop
 *   not desired, present         → destroy
 */
export function reconcile(
  desired: ReadonlyMap<string, DesiredVm>,
  actual: ReadonlyMap<string, VmInfo>,
  ctx: { now: number; restarts: ReadonlyMap<string, RestartState>; failedNics?: ReadonlyMap<string, ReadonlySet<string>> },
): Step[] {
  const steps: Step[] = [];
  for (const d of desired.values()) {
    const a = actual.get(d.id);
    if (d.power === 'stopped') {
      // Stopping a guest that powered off on its own records the request, so that powering it on again starts it.
      if (a?.state === 'running' || a?.exit?.kind === 'poweroff') steps.push({ op: 'stop', id: d.id });
      continue;
    }
    if (!d.config) {
      if (!a || a.state !== 'running') steps.push({ op: 'hold', id: d.id, phase: 'failed', message: d.problem ?? 'cannot be built on this host' });
      continue;
    }
    if (!a) {
      const r = ctx.restarts.get(d.id);
      if (r && r.nextAt > ctx.now) continue;
      steps.push({ op: 'start', id: d.id, config: d.config, reason: r ? 'restart' : 'create' });
      continue;
    }
    if (a.state === 'running') {
      const failed = ctx.failedNics?.get(d.id);
      const c = a.nics ? nicChanges(d.config.nics ?? [], a.nics) : { attach: [], detach: [] };
      const attach = c.attach.filter((n) => !failed?.has(nicOpKey('attach', n)));
      const detach = c.detach.filter((n) => !failed?.has(nicOpKey('detach', n)));
      if (attach.length || detach.length) steps.push({ op: 'nics', id: d.id, attach, detach });
      continue;
    }
    if (a.state === 'crashed') {
      if (d.restartPolicy === 'never') {
        steps.push({ op: 'hold', id: d.id, phase: 'failed', message: a.exit?.message ?? 'crashed' });
        continue;
      }
      const r = ctx.restarts.get(d.id);
      if (r && r.nextAt > ctx.now) continue;
      steps.push({ op: 'start', id: d.id, config: d.config, reason: 'restart' });
      continue;
    }
    if (a.exit?.kind === 'poweroff' && d.restartPolicy !== 'always') {
      steps.push({ op: 'hold', id: d.id, phase: 'stopped', message: 'the guest powered off' });
      continue;
    }
    steps.push({ op: 'start', id: d.id, config: d.config, reason: a.exit?.kind === 'poweroff' ? 'restart' : 'power-on' });
  }
  for (const a of actual.values()) if (!desired.has(a.id)) steps.push({ op: 'destroy', id: a.id });
  return steps;
}

/**
 * Before the host network converges to `taps`: unplug every NIC of a running
 * guest whose tap is about to go, so a tap never leaves under a plugged-in NIC
 * (except one whose unplug failed before: the guest keeps it until its next start).
 */
export function unplugsFirst(actual: ReadonlyMap<string, VmInfo>, taps: ReadonlySet<string>, failedNics?: ReadonlyMap<string, ReadonlySet<string>>): Step[] {
  const steps: Step[] = [];
  for (const a of actual.values()) {
    if (a.state !== 'running') continue;
    const detach = (a.nics ?? []).filter((n) => !taps.has(n.tap) && !failedNics?.get(a.id)?.has(nicOpKey('detach', n)));
    if (detach.length) steps.push({ op: 'nics', id: a.id, attach: [], detach });
  }
  return steps;
}

/** A hot-plug operation on one NIC, as remembered when it failed. */
export function nicOpKey(op: 'attach' | 'detach', nic: NicConfig): string {
  return `${op} ${nic.tap} ${nic.mac.toLowerCase()}`;
}

/** What turns a guest's `live` NICs into `want`: a NIC is the same when its tap and MAC are. */
export function nicChanges(want: readonly NicConfig[], live: readonly NicConfig[]): { attach: NicConfig[]; detach: NicConfig[] } {
  const key = (n: NicConfig) => `${n.tap} ${n.mac.toLowerCase()}`;
  const wanted = new Set(want.map(key));
  const plugged = new Set(live.map(key));
  return { attach: want.filter((n) => !plugged.has(key(n))), detach: live.filter((n) => !wanted.has(key(n))) };
}

/** Exponential backoff with full jitter: the n-th failure waits up to base·2ⁿ, capped. */
export function backoffMs(failures: number, random: number, opts: { baseMs?: number; capMs?: number } = {}): number {
  const cap = opts.capMs ?? 5 * 60_000;
  const ceiling = Math.min(cap, (opts.baseMs ?? 1000) * 2 ** Math.min(failures, 30));
  return Math.floor(random * ceiling);
}
