import { setTimeout as delay } from 'node:timers/promises';
import { ApiError } from '../api/errors.ts';
import type { VmSpec, VmStatus } from '../api/kinds/vm.ts';
import type { AnyObject, Condition } from '../api/object.ts';
import type { Clock } from '../base/clock.ts';
import type { Logger } from '../base/logger.ts';
import type { Client } from '../client/client.ts';
import { AgentCache } from './agent-cache.ts';
import { desiredVm, type HostFacts } from './desired-vm.ts';
import type { Driver, NicConfig, VmInfo } from './drivers/driver.ts';
import { type HostNetworkSync, type NetworkReadiness, withNics } from './host-network-sync.ts';
import type { MetadataGuests } from './metadata-guests.ts';
import type { NocloudSeeds } from './nocloud-seeds.ts';
import { backoffMs, nicChanges, nicOpKey, reconcile, unplugsFirst, type DesiredVm, type RestartState, type Step } from './reconcile.ts';
import { Wakeup } from './wakeup.ts';
import { VmLocks } from './vm-locks.ts';

export interface AgentOptions {
  node: string;
  client: () => Client;
  driver: Driver;
  cache: AgentCache;
  clock: Clock;
  logger: Logger;
  host: Omit<HostFacts, 'lookup'>;
  random?: () => number;
  heartbeatMs?: number;
  /** A reconcile pass runs at least this often, besides on every change (default 5 s). */
  tickMs?: number;
  /** Called after each reconcile pass (tests and benchmarks wait on it). */
  onPass?: (steps: Step[]) => void;
  /** Host networking for VMs with NICs (taps, bridges, VXLAN, firewall); without it NICs are left out. */
  network?: HostNetworkSync;
  /** Shared with the tunnel, whose reboot/reset must not overlap a step for the same VM. */
  locks?: VmLocks;
  /** The metadata service's guests, refreshed every pass; it listens once the host network is up. */
  metadata?: Pick<MetadataGuests, 'update'>;
  /** NoCloud seed images, built before a VM's first start; without it no VM gets one. */
  nocloud?: NocloudSeeds;
  /** How long a guest may take to release a hot-unplugged NIC before it needs a restart (the driver's default: 20 s). */
  unplugTimeoutMs?: number;
}

const referenced = ['machine-type', 'image'];
const statusReportsInFlight = 16;

/**
 * The host agent: connects out, lists and watches the VMs bound to its node
 * into a local cache, reconciles the driver against that cache, and reports
 * status and a heartbeat. Every loop retries with jittered backoff, and the
 * reconcile loop runs from the cache alone while the server is unreachable.
 */
export class Agent {
  private readonly restarts = new Map<string, RestartState>();
  private readonly reported = new Map<string, string>();
  /** The error of a step that failed in the current pass, for the status report. */
  private readonly failures = new Map<string, string>();
  /** Hot-plug operations that failed, by VM and `nicOpKey`, with the error: they wait for the VM's next start. */
  private readonly nicFailures = new Map<string, Map<string, string>>();
  /** Wakes for the reconcile and status loops; a wake while the loop is busy carries over to its next sleep. */
  private readonly reconcileWakeup = new Wakeup();
  private readonly statusWakeup = new Wakeup();
  private readonly wakeReconcile = () => this.reconcileWakeup.wake();
  private readonly wakeStatus = () => this.statusWakeup.wake();
  private readonly random: () => number;
  /** VMs with a driver call in flight; a pass leaves those alone. */
  readonly locks: VmLocks;
  /** Steps begun by passes and not finished yet; `run` waits for them before it returns. */
  private readonly inflight = new Set<Promise<void>>();

  constructor(private readonly o: AgentOptions) {
    this.random = o.random ?? Math.random;
    this.locks = o.locks ?? new VmLocks();
  }

  async run(signal: AbortSignal): Promise<void> {
    await this.o.driver.list();
    this.o.host.onImageChange?.(() => this.wakeReconcile?.());
    await Promise.all([this.syncLoop(signal), this.reconcileLoop(signal), this.heartbeatLoop(signal), this.statusLoop(signal), this.o.network?.run(signal, () => this.wakeReconcile?.())]);
    await Promise.all(this.inflight);
  }

  /** Sleeps, or returns early when aborted. */
  private pause(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const ac = new AbortController();
      const done = () => {
        ac.abort();
        // The run's signal lives as long as the agent: a listener left on it per pause would pile up forever.
        signal.removeEventListener('abort', done);
        resolve();
      };
      signal.addEventListener('abort', done, { once: true });
      this.o.clock.sleep(ms, ac.signal).then(done, () => undefined);
    });
  }

  /** Jittered exponential backoff, capped so the agent converges within seconds of a heal. */
  private backoff(failures: number): number {
    return backoffMs(failures, this.random(), { baseMs: 500, capMs: 8000 });
  }

  // ---- desired state from the server ---------------------------------------

  private async syncLoop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await this.sync(signal, () => (failures = 0));
      } catch (e) {
        if (signal.aborted) return;
        this.o.logger.warn({ err: errText(e), failures }, 'sync with the server failed; retrying');
      }
      await this.pause(this.backoff(++failures), signal);
    }
  }

  private async sync(signal: AbortSignal, connected: () => void): Promise<void> {
    const client = this.o.client();
    const vms: AnyObject[] = [];
    let revision = 0;
    let cont: string | undefined;
    do {
      const page = await client.vms.list({ project: '*', where: [`status.node=${this.o.node}`], limit: 1000, ...(cont ? { continue: cont } : {}) });
      vms.push(...page.items);
      revision ||= page.revision;
      cont = page.continue;
    } while (cont);
    const refs = await this.fetchReferences(client, vms, { refresh: true });
    this.o.cache.replaceAll(['vm', ...referenced], [...vms, ...refs], revision);
    connected();
    this.wakeReconcile?.();
    // A node may watch only its own VMs; what they reference is fetched when a VM changes.
    for await (const ev of client.watch({ kinds: ['vm'], where: [`status.node=${this.o.node}`], revision, signal })) {
      if (ev.type === 'bookmark') {
        this.o.cache.setRevision(ev.revision);
        continue;
      }
      const o = ev.object;
      if (ev.type === 'delete' || (o.status as VmStatus).node !== this.o.node) this.o.cache.remove(o);
      else {
        this.o.cache.put(o);
        for (const r of await this.fetchReferences(client, [o], { refresh: false })) this.o.cache.put(r);
      }
      this.o.cache.setRevision(ev.revision);
      this.wakeReconcile?.();
      // A report the server refused as stale goes again on top of the newer version.
      this.wakeStatus?.();
      this.o.network?.poke();
    }
  }

  /** The machine types and images the VMs need: all of them on a relist, else only those not cached yet or not ready. */
  private async fetchReferences(client: Client, vms: AnyObject[], opts: { refresh: boolean }): Promise<AnyObject[]> {
    const wanted = new Map<string, readonly [string, string, string]>();
    for (const vm of vms) {
      const spec = vm.spec as { machineType: string; image: string };
      for (const ref of [['machine-type', '', spec.machineType], ['image', vm.project ?? '', spec.image]] as const) {
        const cached = this.o.cache.get(ref[0], `${ref[1]}/${ref[2]}`);
        // A cached machine type or ready image does not change under a VM; only a pending image is worth asking again.
        const settled = cached && (ref[0] !== 'image' || (cached.status as { phase?: string }).phase === 'ready');
        if (opts.refresh || !settled) wanted.set(ref.join('/'), ref);
      }
    }
    const found = await Promise.all(
      [...wanted.values()].map(([kind, project, name]) =>
        client
          .resource(kind)
          .get(name, project ? { project } : {})
          .catch((e: unknown) => {
            if (e instanceof ApiError && e.code === 'not_found') return undefined;
            throw e;
          }),
      ),
    );
    return found.filter((o): o is AnyObject => o !== undefined);
  }


  // ---- the host, from the cache ---------------------------------------------

  private async reconcileLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const began = performance.now();
      try {
        await this.launchPass();
      } catch (e) {
        this.o.logger.error({ err: errText(e) }, 'reconcile pass failed');
      }
      // Passes look at every VM: under a stream of changes they run at most half the time, each taking in all changes since the last.
      await delay(Math.min(performance.now() - began, 1000));
      await this.reconcileWakeup.sleep(this.o.tickMs ?? 5000, signal, this.o.clock);
    }
  }

  /** One reconcile pass, resolved once the steps it began have run (the loop itself moves on without waiting for them). */
  async pass(): Promise<Step[]> {
    const steps = await this.launchPass();
    await Promise.all(this.inflight);
    return steps;
  }

  /**
   * Cache + driver → steps, each begun under its VM's lock → status reports
   * for the VMs not busy. A step's end wakes the next pass, which reports it:
   * a VM that arrives while others start never waits for their QEMUs.
   */
  private async launchPass(): Promise<Step[]> {
    const vms = this.o.cache.all('vm');
    const seeds = this.o.nocloud;
    const host: HostFacts = { ...this.o.host, lookup: (k, p, n) => this.o.cache.get(k, `${p}/${n}`), ...(seeds ? { seedPath: (id: string) => seeds.path(id) } : {}) };
    let actual = new Map((await this.o.driver.list()).map((i) => [i.id, i]));
    // A VM whose image is still being pulled stays out of reconcile (reported provisioning) until the image is here.
    const wanted = new Map(vms.map((vm) => [vm.id, desiredVm(vm, host)] as const).filter(([id, d]) => d.waiting === undefined || actual.has(id)));
    const ctx = () => ({ now: this.o.clock.now(), restarts: this.restarts, failedNics: this.failedNics() });
    // Hot-unplugged NICs leave the guest before the host network takes their taps away…
    const taps = this.o.network?.plannedTaps(vms);
    const unplugs = taps ? unplugsFirst(actual, taps, ctx().failedNics).filter((s) => !this.locks.busy(s.id)) : [];
    if (unplugs.length > 0) {
      await Promise.all(unplugs.map((s) => this.locks.tryRun(s.id, () => this.execute(s, actual))));
      actual = new Map((await this.o.driver.list()).map((i) => [i.id, i]));
    }
    // …and taps exist before QEMU opens them (at start or hot-plug): the host network converges first.
    const net = await this.o.network?.converge(vms);
    await this.o.metadata?.update(vms, this.o.network?.currentView, (net?.nics.size ?? 0) > 0);
    // VMs whose NICs are not ready yet wait (provisioning); a running one keeps its NICs as they are.
    const desired = new Map([...wanted].filter(([id]) => !(net?.waiting.has(id) && !actual.has(id))).map(([id, d]) => [id, withNics(d, net)] as const));
    const steps = reconcile(desired, actual, ctx()).filter((s) => !this.locks.busy(s.id));
    for (const s of steps.filter((s) => s.op !== 'hold')) {
      const run = this.locks.tryRun(s.id, () => this.execute(s, actual, vms.find((v) => v.id === s.id))).then(() => {
        this.inflight.delete(run);
        this.wakeReconcile();
      });
      this.inflight.add(run);
    }
    const after = new Map((await this.o.driver.list()).map((i) => [i.id, i]));
    const stepOf = new Map(steps.map((s) => [s.id, s]));
    for (const vm of vms) {
      if (this.locks.busy(vm.id)) continue;
      const step = stepOf.get(vm.id);
      this.report(vm, after.get(vm.id), step?.op === 'hold' ? step : undefined, this.nicsPending(vm, after.get(vm.id), desired.get(vm.id), net));
    }
    this.o.onPass?.(steps);
    return steps;
  }

  private async execute(step: Step, actual: Map<string, VmInfo>, vm?: AnyObject): Promise<void> {
    try {
      switch (step.op) {
        case 'start':
          if (step.config.seed && vm) await this.o.nocloud?.ensure(vm, this.o.network?.currentView, step.config.seed.path);
          await this.o.driver.start(step.config);
          if (step.reason === 'restart') this.o.logger.info({ vm: step.id }, 'restarted VM per its restart policy');
          break;
        case 'stop':
          await this.o.driver.stop(step.id);
          break;
        case 'destroy':
          await this.o.driver.destroy(step.id);
          this.restarts.delete(step.id);
          this.nicFailures.delete(step.id);
          this.reported.delete(step.id);
          break;
        case 'nics':
          await this.hotplug(step);
          break;
        case 'hold':
          break;
      }
      // A fresh boot has every desired NIC: earlier hot-plug failures are moot.
      if (step.op === 'start') this.nicFailures.delete(step.id);
      if (step.op === 'start' && step.reason !== 'restart') this.restarts.delete(step.id);
    } catch (e) {
      const r = this.restarts.get(step.id) ?? { failures: 0, nextAt: 0 };
      r.failures++;
      r.nextAt = this.o.clock.now() + this.backoff(r.failures);
      this.restarts.set(step.id, r);
      this.o.logger.warn({ vm: step.id, op: step.op, err: errText(e) }, 'step failed');
      actual.set(step.id, { id: step.id, name: step.id, state: 'crashed', exit: { kind: 'crash', message: errText(e), at: this.o.clock.now() } });
      this.failures.set(step.id, errText(e));
    }
  }

  /**
   * Unplugs, then plugs in, one NIC at a time. A failure is no crash: it is
   * remembered (not retried until the VM's next start, which applies the
   * change) and reported in the VM's NicsPending condition.
   */
  private async hotplug(step: Extract<Step, { op: 'nics' }>): Promise<void> {
    const ops: (readonly ['attach' | 'detach', NicConfig])[] = [...step.detach.map((n) => ['detach', n] as const), ...step.attach.map((n) => ['attach', n] as const)];
    for (const [op, nic] of ops) {
      try {
        if (op === 'detach') await this.o.driver.detachNic(step.id, nic, this.o.unplugTimeoutMs !== undefined ? { timeoutMs: this.o.unplugTimeoutMs } : {});
        else await this.o.driver.attachNic(step.id, nic);
        this.o.logger.info({ vm: step.id, tap: nic.tap, mac: nic.mac }, op === 'attach' ? 'hot-plugged a NIC' : 'hot-unplugged a NIC');
      } catch (e) {
        this.o.logger.warn({ vm: step.id, tap: nic.tap, err: errText(e) }, `NIC ${op} failed; it waits for the next start`);
        const failed = this.nicFailures.get(step.id) ?? new Map<string, string>();
        failed.set(nicOpKey(op, nic), errText(e));
        this.nicFailures.set(step.id, failed);
      }
    }
  }

  private failedNics(): Map<string, Set<string>> {
    return new Map([...this.nicFailures].map(([id, m]) => [id, new Set(m.keys())]));
  }

  /**
   * A running VM's NicsPending condition: its NICs differ from the spec because
   * a hot-plug failed (until the next start) or a new NIC waits for its network.
   */
  private nicsPending(vm: AnyObject, info: VmInfo | undefined, d: DesiredVm | undefined, net: NetworkReadiness | undefined): Omit<Condition, 'lastTransition'> | undefined {
    if (info?.state !== 'running') return undefined;
    const id = vm.id;
    const failed = this.nicFailures.get(id);
    if (failed && info.nics && d?.config) {
      const c = nicChanges(d.config.nics ?? [], info.nics);
      const errors = [...c.detach.map((n) => failed.get(nicOpKey('detach', n))), ...c.attach.map((n) => failed.get(nicOpKey('attach', n)))].filter((m): m is string => m !== undefined);
      if (errors.length) return { type: 'NicsPending', status: 'true', reason: 'RestartRequired', message: `${errors.join('; ')}; the NIC change applies at the next start`.slice(0, 4000) };
    }
    // Only a NIC the guest lacks is pending: a view that is not here yet (agent restart) or already past a removal is not.
    const waiting = ((vm.spec as VmSpec).nics?.length ?? 0) > (info.nics?.length ?? 0) ? (net?.problems.get(id) ?? net?.waiting.get(id)) : undefined;
    if (waiting) return { type: 'NicsPending', status: 'true', reason: 'WaitingForNetwork', message: waiting.slice(0, 4000) };
    return undefined;
  }

  /** Queues a status report when what the agent knows (phase, error, pending NICs) differs from what it last reported. */
  private report(vm: AnyObject, info: VmInfo | undefined, hold?: Extract<Step, { op: 'hold' }>, nics?: Omit<Condition, 'lastTransition'>): void {
    const prev = vm.status as VmStatus;
    const error = this.failures.get(vm.id) ?? hold?.message ?? (info?.state === 'crashed' ? info.exit?.message : undefined);
    this.failures.delete(vm.id);
    const phase: VmStatus['phase'] = hold?.phase ?? (info?.state === 'running' ? 'running' : info?.state === 'stopped' ? 'stopped' : error ? 'failed' : 'provisioning');
    const lastError = error && phase !== 'running' ? error.slice(0, 4000) : undefined;
    const key = JSON.stringify([phase, lastError ?? null, nics ?? null]);
    if (this.reported.get(vm.id) === key) return;
    this.reported.set(vm.id, key);
    const status: VmStatus = { ...prev, phase, node: this.o.node };
    if (lastError) status.lastError = lastError;
    else delete status.lastError;
    const ready: Condition = {
      type: 'Ready',
      status: phase === 'running' ? 'true' : 'false',
      lastTransition: new Date(this.o.clock.now()).toISOString(),
      ...(lastError ? { message: lastError } : {}),
    };
    const had = prev.conditions?.some((c) => c.type === 'NicsPending');
    const now = new Date(this.o.clock.now()).toISOString();
    const pending: Condition[] = nics ? [{ ...nics, lastTransition: now }] : had ? [{ type: 'NicsPending', status: 'false', lastTransition: now }] : [];
    status.conditions = [...(prev.conditions ?? []).filter((c) => c.type !== 'Ready' && c.type !== 'NicsPending'), ready, ...pending];
    this.o.cache.queueStatus(vm.id, status as Record<string, unknown>);
    this.wakeStatus?.();
  }

  // ---- reports to the server ------------------------------------------------

  private async statusLoop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      let wait = 60_000;
      try {
        const queue = this.o.cache.pendingStatus();
        // Several reports in flight share the server's group commits; each VM still has one report at a time.
        await Promise.all(Array.from({ length: Math.min(statusReportsInFlight, queue.length) }, async () => {
          for (let next = queue.shift(); next; next = queue.shift()) await this.deliver(next.id, next.status);
        }));
        failures = 0;
      } catch (e) {
        wait = this.backoff(++failures);
        this.o.logger.warn({ err: errText(e) }, 'status report failed; queued');
      }
      await this.statusWakeup.sleep(wait, signal, this.o.clock);
    }
  }

  private async deliver(id: string, status: Record<string, unknown>): Promise<void> {
    const cached = this.o.cache.get('vm', id);
    const project = cached?.project;
    try {
      // On top of the newest version cached, with If-Match: a server write (IPAM's addresses) is never undone.
      const body = cached ? agentStatusOver(cached.status as VmStatus, status as VmStatus) : (status as VmStatus);
      await this.o.client().vms.putStatus(id, body, { ...(project ? { project } : {}), ...(cached ? { ifMatch: cached.revision } : {}) });
    } catch (e) {
      // Stale: stays queued until the watch brings the newer version.
      if (e instanceof ApiError && e.code === 'precondition_failed') return;
      if (!(e instanceof ApiError && (e.code === 'not_found' || e.code === 'forbidden' || e.code === 'invalid'))) throw e;
      this.o.logger.warn({ vm: id, err: e.message }, 'status report dropped');
    }
    this.o.cache.delivered(id, status);
  }

  private async heartbeatLoop(signal: AbortSignal): Promise<void> {
    const every = this.o.heartbeatMs ?? 10_000;
    let failures = 0;
    while (!signal.aborted) {
      let wait = every;
      try {
        await this.o.client().nodes.putStatus(this.o.node, { phase: 'ready', lastSeen: new Date(this.o.clock.now()).toISOString(), accel: this.o.host.accel, ...(this.o.network?.underlayIp ? { underlayIp: this.o.network.underlayIp } : {}) });
        failures = 0;
      } catch (e) {
        wait = Math.min(every, this.backoff(++failures));
        this.o.logger.warn({ err: errText(e) }, 'heartbeat failed');
      }
      await this.pause(wait, signal);
    }
  }
}

/** The agent's part of a VM's status (phase, node, last error, Ready and NicsPending) over the rest, which the server writes. */
function agentStatusOver(current: VmStatus, mine: VmStatus): VmStatus {
  const own = (c: Condition) => c.type === 'Ready' || c.type === 'NicsPending';
  const out: VmStatus = { ...current, phase: mine.phase, ...(mine.node ? { node: mine.node } : {}) };
  if (mine.lastError) out.lastError = mine.lastError;
  else delete out.lastError;
  const conditions = [...(current.conditions ?? []).filter((c) => !own(c)), ...(mine.conditions ?? []).filter(own)];
  if (conditions.length) out.conditions = conditions;
  else delete out.conditions;
  return out;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
