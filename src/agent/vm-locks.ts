/**
 * Which VMs have a driver call in flight, so that calls for one VM never
 * overlap (the Driver contract): the reconcile loop and tunnel actions
 * (reboot, reset) both take a VM's lock, and whoever finds it taken does not
 * wait: the reconciler skips the VM this pass, an action reports a conflict.
 */
export class VmLocks {
  private readonly held = new Set<string>();

  /** Whether a call for this VM is in flight. */
  busy(id: string): boolean {
    return this.held.has(id);
  }

  /** Runs `fn` holding the VM's lock; undefined (without running it) when the lock is taken. */
  async tryRun<T>(id: string, fn: () => Promise<T>): Promise<{ value: T } | undefined> {
    if (this.held.has(id)) return undefined;
    this.held.add(id);
    try {
      return { value: await fn() };
    } finally {
      this.held.delete(id);
    }
  }
}
