import { GuestPipe } from '../metadata/guest-pipe.ts';

/** Where the agent finds a VM's host↔guest pipe; the metadata service (`MetadataService`) has the same shape. */
export interface PipeSource {
  /** The pipe of a VM, created on first use. */
  pipe(instanceId: string): GuestPipe;
  /** Drops a VM's pipe (the VM was deleted). */
  forget(instanceId: string): void;
}

/**
 * Host↔guest pipes, one per VM, without a metadata service behind them: the
 * agent hands its `MetadataService` to the tunnel instead, so both ends share
 * one `GuestPipe`; this serves tunnel tests and callers with no guests.
 */
export class GuestPipes implements PipeSource {
  private readonly pipes = new Map<string, GuestPipe>();

  constructor(private readonly opts: { capBytes?: number } = {}) {}

  pipe(instanceId: string): GuestPipe {
    let p = this.pipes.get(instanceId);
    if (!p) {
      p = new GuestPipe(this.opts.capBytes !== undefined ? { capBytes: this.opts.capBytes } : {});
      this.pipes.set(instanceId, p);
    }
    return p;
  }

  forget(instanceId: string): void {
    this.pipes.delete(instanceId);
  }
}
