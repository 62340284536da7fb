import { GuestPipe } from '../metadata/guest-pipe.ts';

/** Where the agent finds a VM's host↔guest pipe; the metadata service (`MetadataService`) has the same shape. */
export interface PipeSource {
  /** The pipe of a VM, created on first use. */
  pipe(instanceId: string): GuestPipe;
  /** Drops a VM's pipe (the VM was deleted). */
  forget(instanceId: string): void;
}

/**
 * The agent's host↔guest pipes, one per VM, until the metadata service is
 * wired in: hand this to it, or hand the service to the tunnel instead, so
 * both ends use the same `GuestPipe`.
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
