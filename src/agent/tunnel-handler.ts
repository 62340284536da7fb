import type { Duplex } from 'node:stream';
import { ApiError } from '../api/errors.ts';
import type { Logger } from '../base/logger.ts';
import type { Driver } from './drivers/driver.ts';
import type { PipeSource } from './pipe-source.ts';
import { decodeData, encodeData, parseServerFrame, replyError, type ServerFrame } from '../api/tunnel.ts';
import type { VmLocks } from './vm-locks.ts';
import { parseSecrets, type SecretStore } from './secret-store.ts';

/** Largest console log sent in one answer (its tail). */
export const maxConsoleLogBytes = 2 * 1024 * 1024;
/** Largest read from a pipe in one answer. */
export const maxPipeReadBytes = 64 * 1024;

/** How the handler talks back: a text frame, or a binary one (with a callback for backpressure). */
export interface TunnelSender {
  text(frame: object): void;
  binary(frame: Uint8Array, done?: (err?: Error) => void): void;
}

export interface TunnelHandlerOptions {
  driver: Driver;
  pipes: PipeSource;
  locks: VmLocks;
  logger: Logger;
  /** Where delivered secret parameters go (the agent's one store, read by its metadata guests). */
  secrets: SecretStore;
}

/**
 * Serves the server's requests on one tunnel connection: console log and
 * attach, reboot and reset (accepted once the VM is running and no other
 * call for it is in flight, then carried out), the pipe's host side, and the
 * one delivery of a VM's secret parameters (to a VM this host runs).
 * Bad frames are dropped with a log line; a failing request gets its error
 * as the answer. `close()` detaches every console of this connection.
 */
export class TunnelHandler {
  private readonly consoles = new Map<number, Duplex>();

  constructor(
    private readonly o: TunnelHandlerOptions,
    private readonly send: TunnelSender,
  ) {}

  /** One WebSocket message from the server. */
  receive(data: Buffer, isBinary: boolean): void {
    if (isBinary) {
      const frame = decodeData(data);
      if (frame) this.consoles.get(frame.id)?.write(frame.bytes);
      return;
    }
    const frame = parseServerFrame(data.toString('utf8'));
    if (!frame) {
      this.o.logger.warn('tunnel: dropped a malformed frame from the server');
      return;
    }
    void this.serve(frame);
  }

  /** The connection is gone: detach its consoles. */
  close(): void {
    for (const c of this.consoles.values()) c.destroy();
    this.consoles.clear();
  }

  private async serve(frame: ServerFrame): Promise<void> {
    if (frame.op === 'end') {
      const c = this.consoles.get(frame.id);
      this.consoles.delete(frame.id);
      c?.destroy();
      return;
    }
    try {
      const data = await this.handle(frame);
      this.send.text({ id: frame.id, op: 'reply', ...(data ? { data: data.toString('base64') } : {}) });
    } catch (e) {
      this.send.text({ id: frame.id, op: 'reply', error: replyError(e) });
    }
  }

  private async handle(f: Exclude<ServerFrame, { op: 'end' }>): Promise<Buffer | undefined> {
    const { driver, pipes } = this.o;
    switch (f.op) {
      case 'console.log': {
        const log = Buffer.from(await driver.consoleLog(f.vm), 'utf8');
        return log.subarray(Math.max(0, log.length - maxConsoleLogBytes));
      }
      case 'console.attach':
        this.attach(f.id, await driver.attachConsole(f.vm));
        return undefined;
      case 'reboot':
      case 'reset':
        await this.action(f.op, f.vm);
        return undefined;
      case 'pipe.write':
        await driver.inspect(f.vm);
        pipes.pipe(f.vm).hostWrite(Buffer.from(f.data ?? '', 'base64'));
        return undefined;
      case 'pipe.read':
        await driver.inspect(f.vm);
        return pipes.pipe(f.vm).hostRead(maxPipeReadBytes);
      case 'secrets.put': {
        const secrets = parseSecrets(f.data);
        if (!secrets) throw new ApiError('invalid', `Cannot take secret parameters of vm "${f.vm}": expected a JSON object of strings`);
        await driver.inspect(f.vm);
        this.o.secrets.put(f.vm, secrets);
        return undefined;
      }
    }
  }

  /** Checks the VM can take the action, answers, and carries it out holding the VM's lock. */
  private async action(op: 'reboot' | 'reset', vm: string): Promise<void> {
    const info = await this.o.driver.inspect(vm);
    if (info.state !== 'running') throw new ApiError('conflict', `Cannot ${op} vm "${info.name}": vm is not running`);
    let accepted!: () => void;
    const started = new Promise<void>((r) => (accepted = r));
    const done = this.o.locks.tryRun(vm, async () => {
      accepted();
      return op === 'reboot' ? this.o.driver.reboot(vm) : this.o.driver.reset(vm);
    });
    const outcome = await Promise.race([started.then(() => 'started' as const), done]);
    if (outcome === undefined) throw new ApiError('conflict', `Cannot ${op} vm "${info.name}": another operation on it is in progress`);
    done.then(
      () => this.o.logger.info({ vm, op }, 'tunnel action done'),
      (e: unknown) => this.o.logger.warn({ vm, op, err: e instanceof Error ? e.message : String(e) }, 'tunnel action failed'),
    );
  }

  private attach(id: number, c: Duplex): void {
    this.consoles.set(id, c);
    c.on('data', (chunk: Buffer) => {
      c.pause();
      this.send.binary(encodeData(id, chunk), () => c.resume());
    });
    const ended = () => {
      if (this.consoles.get(id) !== c) return;
      this.consoles.delete(id);
      this.send.text({ id, op: 'end' });
    };
    c.on('end', ended);
    c.on('close', ended);
    c.on('error', (e) => {
      this.o.logger.warn({ err: e.message }, 'console stream failed');
      c.destroy();
    });
  }
}
