import { ApiError } from '../api/errors.ts';

/** Bytes queued in one direction, up to a cap. */
class ByteQueue {
  private chunks: Buffer[] = [];
  size = 0;

  constructor(readonly capBytes: number) {}

  push(data: Uint8Array, direction: string): void {
    if (this.size + data.length > this.capBytes) {
      throw new ApiError('too_large', `Cannot write ${data.length} bytes to the ${direction} pipe: ${this.size} of ${this.capBytes} bytes are already queued`);
    }
    if (data.length === 0) return;
    this.chunks.push(Buffer.from(data));
    this.size += data.length;
  }

  take(maxBytes: number): Buffer | undefined {
    if (this.size === 0) return undefined;
    const all = Buffer.concat(this.chunks);
    const out = all.subarray(0, maxBytes);
    const rest = all.subarray(out.length);
    this.chunks = rest.length > 0 ? [Buffer.from(rest)] : [];
    this.size = rest.length;
    return Buffer.from(out);
  }
}

/**
 * The host↔guest pipe of one VM: two byte queues with caps. The guest uses
 * /crowd/v1/pipe/{read,write}; the agent calls the host side. Reads are
 * non-blocking and consume what they return; a write past the cap fails
 * whole (`too_large`) and queues nothing.
 */
export class GuestPipe {
  private readonly toGuest: ByteQueue;
  private readonly toHost: ByteQueue;
  private listeners: (() => void)[] = [];

  constructor(opts: { capBytes?: number } = {}) {
    const cap = opts.capBytes ?? 1024 * 1024;
    this.toGuest = new ByteQueue(cap);
    this.toHost = new ByteQueue(cap);
  }

  /** Host side: queues bytes for the guest to read. */
  hostWrite(data: Uint8Array): void {
    this.toGuest.push(data, 'host-to-guest');
  }

  /** Host side: takes up to `maxBytes` the guest wrote, or undefined when there is none. */
  hostRead(maxBytes = Number.MAX_SAFE_INTEGER): Buffer | undefined {
    return this.toHost.take(maxBytes);
  }

  /** Guest side (POST /crowd/v1/pipe/write). */
  guestWrite(data: Uint8Array): void {
    this.toHost.push(data, 'guest-to-host');
    if (data.length > 0) for (const l of this.listeners) l();
  }

  /** Guest side (GET /crowd/v1/pipe/read). */
  guestRead(maxBytes = Number.MAX_SAFE_INTEGER): Buffer | undefined {
    return this.toGuest.take(maxBytes);
  }

  /** Calls `listener` whenever the guest writes; returns a function that removes it. */
  onGuestWrite(listener: () => void): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** Bytes waiting in each direction. */
  pending(): { toGuest: number; toHost: number } {
    return { toGuest: this.toGuest.size, toHost: this.toHost.size };
  }
}
