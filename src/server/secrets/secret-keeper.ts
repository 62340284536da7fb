import { ApiError } from '../../api/errors.ts';
import type { AnyObject, Condition } from '../../api/object.ts';
import type { Clock } from '../../base/clock.ts';
import type { Logger } from '../../base/logger.ts';
import { listAll } from '../../store/list-all.ts';
import type { Store } from '../../store/store.ts';
import type { TunnelRegistry } from '../tunnel/tunnel-registry.ts';

/** The VM condition that says where its secret parameters are. */
export const secretsCondition = 'SecretsDelivered';
/** What a VM's condition says when the server restarted before its secrets reached the host. */
export const lostMessage = 'secret parameters were lost before delivery (server restart); pass them again';

/** How often undelivered secrets are offered again (the host's agent may connect, or the VM may appear there, later). */
const retryMs = 1000;
/** Rereads a VM's status this often when another writer wins the race for it. */
const statusAttempts = 5;

type Params = Record<string, string>;

/**
 * Secret OS parameters between the write that carries them and their one
 * delivery to the host running the VM. Values live only in this map, never
 * in the store: the VM gets a `SecretsDelivered` condition (false/Pending,
 * true/Delivered, false/Lost after a restart), which carries no value. A
 * delivered or deleted VM's entry is dropped.
 */
export class SecretKeeper {
  private readonly pending = new Map<string, Params>();
  private wake: (() => void) | undefined;

  constructor(private readonly o: { store: Store; tunnels: TunnelRegistry; clock: Clock; logger: Logger }) {}

  /** Keeps a VM's secrets (replacing any undelivered ones), marks it Pending and offers them to its host. */
  async keep(vm: AnyObject, params: Params): Promise<AnyObject> {
    this.pending.set(vm.id, params);
    const marked = await this.setCondition(vm.id, { status: 'false', reason: 'Pending', message: 'secret parameters wait for delivery to the VM\'s host' });
    this.wake?.();
    return marked ?? vm;
  }

  /** Whether a VM has secrets waiting (tests). */
  holds(vmId: string): boolean {
    return this.pending.has(vmId);
  }

  /** Marks VMs whose secrets a previous server held as Lost, then delivers until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await this.markLost();
    while (!signal.aborted) {
      for (const id of [...this.pending.keys()]) await this.deliver(id);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.o.clock.sleep(retryMs, signal).then(resolve, resolve);
      });
      this.wake = undefined;
    }
  }

  private async markLost(): Promise<void> {
    const { items } = await listAll(this.o.store, { kind: 'vm', project: '*' });
    for (const vm of items) {
      const c = conditionOf(vm);
      if (c?.status === 'false' && c.reason === 'Pending' && !this.pending.has(vm.id)) {
        await this.setCondition(vm.id, { status: 'false', reason: 'Lost', message: lostMessage });
      }
    }
  }

  private async deliver(id: string): Promise<void> {
    const params = this.pending.get(id);
    if (!params) return;
    let vm: AnyObject;
    try {
      vm = await this.o.store.get({ kind: 'vm', idOrName: id });
    } catch (e) {
      if (e instanceof ApiError && e.code === 'not_found') this.pending.delete(id);
      return;
    }
    const node = (vm.status as { node?: string }).node;
    if (!node || !this.o.tunnels.connected(node)) return;
    try {
      await this.o.tunnels.get(node, 'deliver secret parameters').request('secrets.put', vm.id, Buffer.from(JSON.stringify(params), 'utf8'));
    } catch (e) {
      this.o.logger.debug({ vm: vm.id, node, err: e instanceof Error ? e.message : String(e) }, 'secret parameters not delivered yet');
      return;
    }
    if (this.pending.get(id) === params) this.pending.delete(id);
    this.o.logger.info({ vm: vm.id, node }, 'secret parameters delivered');
    await this.setCondition(vm.id, { status: 'true', reason: 'Delivered', message: `delivered to node "${node}"` }).catch(() => undefined);
  }

  /** Sets the VM's condition, rereading when another writer changed the status meanwhile; undefined when the VM is gone. */
  private async setCondition(id: string, c: Omit<Condition, 'type' | 'lastTransition'>): Promise<AnyObject | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        const vm = await this.o.store.get({ kind: 'vm', idOrName: id });
        const status = vm.status as { conditions?: Condition[] };
        const cond: Condition = { type: secretsCondition, ...c, lastTransition: new Date(this.o.clock.now()).toISOString() };
        const conditions = [...(status.conditions ?? []).filter((x) => x.type !== secretsCondition), cond];
        return await this.o.store.updateStatus({ kind: 'vm', idOrName: id }, { ...status, conditions }, { author: 'system:secrets', ifRevision: vm.revision });
      } catch (e) {
        if (e instanceof ApiError && e.code === 'not_found') return undefined;
        if (!(e instanceof ApiError && e.code === 'precondition_failed') || attempt >= statusAttempts) throw e;
      }
    }
  }
}

function conditionOf(vm: AnyObject): Condition | undefined {
  return (vm.status as { conditions?: Condition[] }).conditions?.find((c) => c.type === secretsCondition);
}
