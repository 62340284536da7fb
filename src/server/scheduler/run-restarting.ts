import type { Clock } from '../../base/clock.ts';
import type { Logger } from '../../base/logger.ts';

/**
 * Runs a watch-driven controller's session again and again until the signal
 * aborts: a session ends by failing (a watch cut off as `gone`, a store
 * error), and the next one relists after a second's pause.
 */
export async function runRestarting(session: (signal: AbortSignal) => Promise<void>, opts: { what: string; logger: Logger; clock: Clock; signal: AbortSignal }): Promise<void> {
  const { signal } = opts;
  while (!signal.aborted) {
    try {
      await session(signal);
    } catch (e) {
      if (signal.aborted) return;
      opts.logger.warn({ err: e instanceof Error ? e.message : String(e) }, `${opts.what} restarting`);
      await opts.clock.sleep(1000, signal).catch(() => undefined);
    }
  }
}
