import type { Clock } from '../base/clock.ts';

/**
 * A loop's sleep that `wake()` cuts short. A wake that comes while the loop is
 * busy (not sleeping) is kept, so its next sleep returns at once: a change
 * that arrives during a reconcile pass or a status flush is never left for the
 * next tick.
 */
export class Wakeup {
  private pending = false;
  private cut: (() => void) | undefined;

  wake(): void {
    this.pending = true;
    this.cut?.();
  }

  /** Sleeps `ms`, or less when woken (now or since the last sleep) or aborted. */
  async sleep(ms: number, signal: AbortSignal, clock: Clock): Promise<void> {
    if (this.pending || signal.aborted) {
      this.pending = false;
      return;
    }
    const ac = new AbortController();
    const stop = () => ac.abort();
    this.cut = stop;
    signal.addEventListener('abort', stop, { once: true });
    try {
      await clock.sleep(ms, ac.signal).catch(() => undefined);
    } finally {
      this.cut = undefined;
      this.pending = false;
      signal.removeEventListener('abort', stop);
    }
  }
}
