import { EventEmitter } from 'node:events';
import net from 'node:net';
import readline from 'node:readline';

/** An asynchronous QMP event, e.g. `SHUTDOWN` with `{guest, reason}`. */
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

/**
 * A QEMU Machine Protocol client over a unix socket: greeting, capabilities
 * negotiation, commands with per-command timeouts, events. Emits `event`
 * (QmpEvent) and `close` once (QEMU drops the socket when it quits).
 */
export class QmpClient extends EventEmitter {
  private nextId = 1;
  private pending = new Map<string, Pending>();
  private closed = false;

  private constructor(private readonly sock: net.Socket) {
    super();
  }

  /** Connects, waits for the greeting and leaves capabilities-negotiation mode. */
  static connect(path: string, opts: { timeoutMs?: number } = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(path);
      const client = new QmpClient(sock);
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(e);
        client.close();
      };
      const timer = setTimeout(() => fail(new Error(`No QMP greeting on "${path}" within ${timeoutMs} ms`)), timeoutMs);
      sock.on('error', (e) => client.shutdown(e));
      sock.on('close', () => client.shutdown(new Error('QMP connection closed')));
      const lines = readline.createInterface({ input: sock });
      lines.on('error', (e) => client.shutdown(e));
      let greeted = false;
      client.once('close', fail);
      lines.on('line', (line) => {
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          return;
        }
        if (!greeted && 'QMP' in msg) {
          greeted = true;
          client.execute('qmp_capabilities', undefined, { timeoutMs }).then(() => {
            settled = true;
            clearTimeout(timer);
            resolve(client);
          }, fail);
        } else client.receive(msg);
      });
    });
  }

  /** Runs one command; rejects with QEMU's error description, on timeout, or when the connection closes. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: { timeoutMs?: number } = {}): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`Cannot run QMP command "${command}": connection closed`));
    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QMP command "${command}" timed out after ${opts.timeoutMs ?? 5000} ms`));
      }, opts.timeoutMs ?? 5000);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.sock.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id }) + '\n');
    });
  }

  close(): void {
    this.sock.destroy();
    this.shutdown(new Error('QMP connection closed'));
  }

  private receive(msg: Record<string, unknown>): void {
    if (typeof msg.event === 'string') {
      this.emit('event', { event: msg.event, data: msg.data as Record<string, unknown> | undefined } satisfies QmpEvent);
      return;
    }
    const p = this.pending.get(String(msg.id));
    if (!p) return;
    this.pending.delete(String(msg.id));
    clearTimeout(p.timer);
    const err = msg.error as { desc?: string } | undefined;
    if (err) p.reject(new Error(`QMP error: ${err.desc ?? 'unknown'}`));
    else p.resolve(msg.return);
  }

  private shutdown(e: Error): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending.clear();
    this.emit('close', e);
  }
}
