import type { GuestPipe } from '../metadata/guest-pipe.ts';

/** Where the agent finds a VM's host↔guest pipe: its `MetadataService`, so the tunnel and the guest share one pipe. */
export interface PipeSource {
  /** The pipe of a VM, created on first use. */
  pipe(instanceId: string): GuestPipe;
  /** Drops a VM's pipe (the VM was deleted). */
  forget(instanceId: string): void;
}
