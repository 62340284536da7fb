/**
 * A WAN between two network namespaces for the WAN benchmark: a veth with
 * random loss both ways (nftables, as tc here has no netem), a cut switch for
 * partitions, a TCP proxy that delays every chunk by a fixed time each way,
 * and the client-side liveness checks an agent would need on such a link.
 */
import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { ExecRunner, type Runner } from '../src/base/runner.ts';
import { NamespacedRunner } from '../src/net/namespaced-runner.ts';

/** Forwards `from`'s data to `to` `delayMs` after it arrived, in order, and its end after the last chunk. */
function delayedPipe(from: Socket, to: Socket, delayMs: number): void {
  const queue: { at: number; chunk: Buffer | null }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const drain = () => {
    timer = undefined;
    const t = performance.now();
    while (queue.length > 0 && queue[0]!.at <= t) {
      const { chunk } = queue.shift()!;
      if (to.destroyed) return;
      if (chunk === null) to.end();
      else to.write(chunk);
    }
    if (queue.length > 0) timer = setTimeout(drain, queue[0]!.at - t);
  };
  const push = (chunk: Buffer | null) => {
    queue.push({ at: performance.now() + delayMs, chunk });
    timer ??= setTimeout(drain, delayMs);
  };
  from.on('data', (c: Buffer) => push(c));
  from.on('end', () => push(null));
  to.on('close', () => timer && clearTimeout(timer));
}

/** A TCP proxy on `listen` to `target` adding `delayMs` each way: a WAN's latency with order kept (its RTT is twice that). */
export async function delayProxy(o: { listenHost: string; targetHost: string; targetPort: number; delayMs: number }): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ host: o.targetHost, port: o.targetPort, allowHalfOpen: true });
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => {
        sockets.delete(s);
        // A reset on one side reaches the other one delay later, like a RST crossing the WAN.
        setTimeout(() => (s === client ? upstream : client).destroy(), o.delayMs);
      });
      s.on('error', () => s.destroy());
    }
    delayedPipe(client, upstream, o.delayMs);
    delayedPipe(upstream, client, o.delayMs);
  });
  await new Promise<void>((r) => server.listen(0, o.listenHost, r));
  return {
    url: `http://${o.listenHost}:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** Two namespaces, `<tag>s` (server side) and `<tag>r` (remote site), joined by a veth whose server end carries the loss and cut rules. */
export class WanLink {
  readonly server: string;
  readonly remote: string;
  readonly serverIp: string;
  readonly remoteIp: string;
  /** The veth end inside the server namespace. */
  private readonly dev: string;
  private readonly root: Runner = new ExecRunner();

  constructor(readonly tag: string, subnet = 231) {
    if (!/^[a-z0-9]{1,11}$/.test(tag)) throw new Error(`Cannot name a WAN link "${tag}": expected 1-11 lowercase letters or digits`);
    this.server = `${tag}s`;
    this.remote = `${tag}r`;
    this.dev = `${tag}a`;
    this.serverIp = `10.${subnet}.0.1`;
    this.remoteIp = `10.${subnet}.0.2`;
  }

  /** Creates both namespaces and the veth between them; `destroy` undoes it (also after a partial create). */
  async create(): Promise<void> {
    const peer = `${this.tag}b`;
    const s = new NamespacedRunner(this.root, this.server);
    const r = new NamespacedRunner(this.root, this.remote);
    await this.root.run({ argv: ['ip', 'netns', 'add', this.server] });
    await this.root.run({ argv: ['ip', 'netns', 'add', this.remote] });
    await this.root.run({ argv: ['ip', 'link', 'add', this.dev, 'netns', this.server, 'type', 'veth', 'peer', 'name', peer, 'netns', this.remote] });
    await s.run({ argv: ['ip', 'addr', 'add', `${this.serverIp}/30`, 'dev', this.dev] });
    await r.run({ argv: ['ip', 'addr', 'add', `${this.remoteIp}/30`, 'dev', peer] });
    for (const [runner, dev] of [[s, this.dev], [r, peer]] as const) {
      await runner.run({ argv: ['ip', 'link', 'set', 'lo', 'up'] });
      await runner.run({ argv: ['ip', 'link', 'set', dev, 'up'] });
    }
  }

  /** Drops `percent` % of the packets in each direction, at random (`numgen random`). */
  async loss(percent: number): Promise<void> {
    await this.nft(this.table('loss', `numgen random mod 100 < ${Math.round(percent)} drop`));
  }

  /** A partition: every packet over the link dropped both ways (connections stay open, as on a real cut). */
  async cut(): Promise<void> {
    await this.nft(this.table('cut', 'drop'), -10);
  }

  async heal(): Promise<void> {
    await this.nft(`delete table inet ${this.tag}cut\n`);
  }

  /** Removes both namespaces, which takes the veth and the rules with them. */
  async destroy(): Promise<void> {
    for (const ns of [this.server, this.remote]) await this.root.run({ argv: ['ip', 'netns', 'del', ns] }).catch(() => undefined);
  }

  private table(name: string, verdict: string): string {
    const chain = (hook: 'input' | 'output', dir: 'iifname' | 'oifname') =>
      ` chain ${hook} {\n  type filter hook ${hook} priority PRIO; policy accept;\n  ${dir} "${this.dev}" ${verdict}\n }\n`;
    return `table inet ${this.tag}${name} {\n${chain('input', 'iifname')}${chain('output', 'oifname')}}\n`;
  }

  private async nft(script: string, priority = 0): Promise<void> {
    await new NamespacedRunner(this.root, this.server).run({ argv: ['nft', '-f', '-'], input: script.replaceAll('PRIO', String(priority)) });
  }
}

