import { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { ApiError } from '../../api/errors.ts';
import type { Logger } from '../../base/logger.ts';
import { decodeData, encodeData, parseAgentFrame, type TunnelOp, type TunnelReply } from '../../api/tunnel.ts';

interface Pending {
  resolve(reply: TunnelReply): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export interface NodeTunnelOptions {
  node: string;
  logger: Logger;
  /** How long the agent may take to answer one request (default 15 s). */
  timeoutMs?: number;
}

/**
 * The server's end of one agent's tunnel: requests with one answer each, and
 * console streams of bytes. A frame the protocol does not allow drops the
 * tunnel (the agent reconnects); it never reaches a handler half-parsed.
 */
export class NodeTunnel {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly streams = new Map<number, Duplex>();
  private closedWith: string | undefined;

  constructor(
    private readonly ws: WebSocket,
    private readonly o: NodeTunnelOptions,
  ) {
    ws.on('message', (data, isBinary) => this.receive(data as Buffer, isBinary));
    ws.on('close', () => this.shutdown('the agent disconnected'));
    ws.on('error', (err) => o.logger.warn({ node: o.node, err: err.message }, 'tunnel error'));
  }

  get node(): string {
    return this.o.node;
  }

  /** Sends one request and resolves with the agent's answer; its error becomes the same ApiError. */
  async request(op: TunnelOp, vm: string, data?: Buffer, id = this.allocateId()): Promise<Buffer | undefined> {
    const reply = await this.send(id, op, vm, data);
    if (reply.error) throw new ApiError(reply.error.code, reply.error.message);
    return reply.data === undefined ? undefined : Buffer.from(reply.data, 'base64');
  }

  /** Opens a console stream: bytes written go to the guest's console, its output comes out. */
  async openConsole(vm: string): Promise<Duplex> {
    const id = this.allocateId();
    const stream = new Duplex({
      read() {},
      write: (chunk: Buffer, _enc, done) => {
        if (this.closedWith) return done(new Error(this.closedWith));
        this.ws.send(encodeData(id, chunk), done);
      },
      final: (done) => {
        this.sendEnd(id);
        done();
      },
      destroy: (err, done) => {
        if (this.streams.delete(id)) this.sendEnd(id);
        done(err);
      },
    });
    this.streams.set(id, stream);
    try {
      await this.request('console.attach', vm, undefined, id);
    } catch (e) {
      this.streams.delete(id);
      stream.destroy();
      throw e;
    }
    return stream;
  }

  /** Drops the tunnel with a WebSocket close code and reason. */
  close(code: number, reason: string): void {
    this.ws.close(code, reason);
    this.shutdown(reason);
  }

  private allocateId(): number {
    const id = this.nextId;
    this.nextId = id >= 0xffffffff ? 1 : id + 1;
    return id;
  }

  private send(id: number, op: TunnelOp, vm: string, data?: Buffer): Promise<TunnelReply> {
    if (this.closedWith) return Promise.reject(this.unavailable(op));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ApiError('unavailable', `Cannot ${op} on node "${this.o.node}": the agent did not answer within ${this.o.timeoutMs ?? 15_000} ms`));
      }, this.o.timeoutMs ?? 15_000);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ id, op, vm, ...(data ? { data: data.toString('base64') } : {}) }));
    });
  }

  private sendEnd(id: number): void {
    if (!this.closedWith) this.ws.send(JSON.stringify({ id, op: 'end' }));
  }

  private receive(data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      const frame = decodeData(data);
      if (!frame) return this.violation('a binary frame without a stream id');
      this.streams.get(frame.id)?.push(frame.bytes);
      return;
    }
    const frame = parseAgentFrame(data.toString('utf8'));
    if (!frame) return this.violation('a malformed text frame');
    if (frame.op === 'end') {
      const s = this.streams.get(frame.id);
      this.streams.delete(frame.id);
      s?.push(null);
      return;
    }
    const p = this.pending.get(frame.id);
    if (!p) return;
    this.pending.delete(frame.id);
    clearTimeout(p.timer);
    p.resolve(frame);
  }

  private violation(what: string): void {
    this.o.logger.warn({ node: this.o.node }, `tunnel dropped: the agent sent ${what}`);
    this.close(1002, `protocol error: ${what}`);
  }

  private unavailable(op: string): ApiError {
    return new ApiError('unavailable', `Cannot ${op} on node "${this.o.node}": ${this.closedWith}`);
  }

  private shutdown(why: string): void {
    if (this.closedWith) return;
    this.closedWith = why;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(this.unavailable('finish the request'));
    }
    this.pending.clear();
    for (const s of this.streams.values()) s.push(null);
    this.streams.clear();
  }
}
