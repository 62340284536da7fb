import type WebSocket from 'ws';
import { ApiError } from '../api/errors.ts';
import type { Clock } from '../base/clock.ts';
import type { Logger } from '../base/logger.ts';
import { openWebSocket, UpgradeRefusedError, webSocketUrl } from '../base/pinned-websocket.ts';
import type { Driver } from './drivers/driver.ts';
import type { PipeSource } from './pipe-source.ts';
import type { SecretStore } from './secret-store.ts';
import { backoffMs } from './reconcile.ts';
import { TunnelHandler } from './tunnel-handler.ts';
import type { VmLocks } from './vm-locks.ts';

export interface AgentTunnelOptions {
  /** The server URL (http or https). */
  server: string;
  node: string;
  /** The current `Bearer crowdnode.…` header; read at every (re)connect, so renewals apply. */
  authorization: () => string;
  /** sha256:<hex> of the server certificate (https). */
  fingerprint?: string;
  driver: Driver;
  pipes: PipeSource;
  /** Where delivered secret parameters go. */
  secrets: SecretStore;
  locks: VmLocks;
  clock: Clock;
  logger: Logger;
  random?: () => number;
  /** How often the link is checked with a ping (default 20 s); no pong by the next one drops it. */
  pingMs?: number;
  /** Called each time the tunnel is up (tests wait on it). */
  onConnected?: () => void;
}

/**
 * The agent's one outbound connection for everything the server asks of the
 * host (console, reboot/reset, the guest pipe): a WebSocket to
 * `/v1/nodes/{name}/tunnel`, kept open and reopened with jittered backoff,
 * so the host listens on no port.
 */
export class AgentTunnel {
  private readonly random: () => number;

  constructor(private readonly o: AgentTunnelOptions) {
    this.random = o.random ?? Math.random;
  }

  /** Connects and serves until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const url = webSocketUrl(this.o.server, `/v1/nodes/${encodeURIComponent(this.o.node)}/tunnel`);
    let failures = 0;
    while (!signal.aborted) {
      try {
        const ws = await openWebSocket(url, { authorization: this.o.authorization(), signal, ...(this.o.fingerprint ? { fingerprint: this.o.fingerprint } : {}) });
        failures = 0;
        this.o.logger.info('tunnel connected');
        await this.serve(ws, signal);
        if (!signal.aborted) this.o.logger.warn('tunnel closed; reconnecting');
      } catch (e) {
        if (signal.aborted) return;
        const err = e instanceof UpgradeRefusedError ? ApiError.fromBody(e.status, e.body) : e;
        this.o.logger.warn({ err: err instanceof Error ? err.message : String(err), failures }, 'tunnel connect failed; retrying');
      }
      const wait = backoffMs(++failures, this.random(), { baseMs: 500, capMs: 8000 });
      await this.o.clock.sleep(wait, signal).catch(() => undefined);
    }
  }

  /** Serves one connection until it closes. */
  private serve(ws: WebSocket, signal: AbortSignal): Promise<void> {
    const handler = new TunnelHandler(
      { driver: this.o.driver, pipes: this.o.pipes, secrets: this.o.secrets, locks: this.o.locks, logger: this.o.logger },
      {
        text: (frame) => ws.readyState === ws.OPEN && ws.send(JSON.stringify(frame)),
        binary: (frame, done) => (ws.readyState === ws.OPEN ? ws.send(frame, { binary: true }, done) : done?.()),
      },
    );
    return new Promise((resolve) => {
      const abort = () => ws.terminate();
      signal.addEventListener('abort', abort, { once: true });
      // A link that died without a word (a partition) shows as a missing pong; the next connect starts over.
      let alive = true;
      ws.on('pong', () => (alive = true));
      const ping = setInterval(() => {
        if (!alive) return ws.terminate();
        alive = false;
        ws.ping();
      }, this.o.pingMs ?? 20_000);
      ws.on('message', (data, isBinary) => handler.receive(data as Buffer, isBinary));
      ws.resume();
      ws.on('error', (e) => this.o.logger.warn({ err: e.message }, 'tunnel error'));
      ws.once('close', () => {
        clearInterval(ping);
        signal.removeEventListener('abort', abort);
        handler.close();
        resolve();
      });
      this.o.onConnected?.();
    });
  }
}
