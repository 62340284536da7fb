/** The server side shared by the agent and WAN benchmarks: a real HTTP server, scheduler and SQLite store in one process. */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { AnyObject } from '../src/api/object.ts';
import { AdminOnlyAuthorizer } from '../src/auth/authorizer.ts';
import { AuthChain } from '../src/auth/chain.ts';
import { NodeCredentialAuthenticator } from '../src/auth/node-credential.ts';
import { hashToken, StaticTokenAuthenticator } from '../src/auth/static-token.ts';
import { systemClock, type Clock } from '../src/base/clock.ts';
import { silentLogger } from '../src/base/logger.ts';
import { buildApp } from '../src/server/app.ts';
import { ensureDefaultProject, ensureDefaultSite } from '../src/server/bootstrap.ts';
import { Enrolment } from '../src/server/enrolment.ts';
import { nodeRoutes } from '../src/server/routes/nodes.ts';
import { Scheduler } from '../src/server/scheduler/scheduler.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../src/store/store.ts';

export const adminToken = 'crowd_bench-agent-admin';
export const by = { author: 'bench' };
/** Wall-clock milliseconds with sub-millisecond resolution, comparable with file mtimes and across processes. */
export const now = () => performance.timeOrigin + performance.now();

export interface BenchServerOptions {
  /** Address to listen on (default loopback). */
  host?: string;
  /** The server's time: enrolment, credentials, API and scheduler (default the system clock). */
  clock?: Clock;
  /** Lifetime of node credentials (default the enrolment's). */
  credentialTtlMs?: number;
  /** How often a quiet watch stream gets a bookmark (default the server's). */
  watchBookmarkMs?: number;
}

/** A real HTTP server over a SQLite file (durable commits), with the scheduler, and a request counter per 100 ms. */
export class BenchServer {
  store!: Store;
  app!: FastifyInstance;
  enrolment!: Enrolment;
  url = '';
  /** Requests answered, by 100 ms bucket since the epoch. */
  readonly buckets = new Map<number, number>();
  watchRequests = 0;
  private ac = new AbortController();
  private scheduling: Promise<void> = Promise.resolve();

  constructor(
    private readonly dbPath: string,
    private readonly opts: BenchServerOptions = {},
  ) {}

  async start(port = 0): Promise<void> {
    const clock = this.opts.clock ?? systemClock;
    const host = this.opts.host ?? '127.0.0.1';
    this.store = new SqliteStore({ path: this.dbPath });
    await ensureDefaultProject(this.store);
    await ensureDefaultSite(this.store);
    this.enrolment = new Enrolment({ store: this.store, clock, ...(this.opts.credentialTtlMs ? { credentialTtlMs: this.opts.credentialTtlMs } : {}) });
    const store = this.store;
    this.app = await buildApp({
      store,
      auth: new AuthChain([new StaticTokenAuthenticator([{ name: 'admin', sha256: hashToken(adminToken) }]), new NodeCredentialAuthenticator((id) => store.getCredential(id), clock)]),
      authorizer: new AdminOnlyAuthorizer(),
      logger: silentLogger(),
      clock,
      ...(this.opts.watchBookmarkMs ? { watchBookmarkMs: this.opts.watchBookmarkMs } : {}),
      plugins: [nodeRoutes(this.enrolment)],
    });
    this.app.server.on('request', (req: { url?: string }) => {
      const b = Math.floor(Date.now() / 100);
      this.buckets.set(b, (this.buckets.get(b) ?? 0) + 1);
      if (req.url?.startsWith('/v1/watch')) this.watchRequests++;
    });
    await this.app.listen({ host, port });
    this.url = `http://${host}:${(this.app.server.address() as AddressInfo).port}`;
    this.ac = new AbortController();
    this.scheduling = new Scheduler({ store, logger: silentLogger(), clock }).run(this.ac.signal);
  }

  async stop(): Promise<void> {
    this.ac.abort();
    await this.app.close();
    await this.scheduling;
    await this.store.close();
  }

  /** The highest request count in any 1 s window (ten 100 ms buckets) from `since`. */
  peakPerSecond(since: number): number {
    let peak = 0;
    const from = Math.floor(since / 100);
    const to = Math.floor(Date.now() / 100);
    for (let b = from; b <= to; b++) {
      let sum = 0;
      for (let i = 0; i < 10; i++) sum += this.buckets.get(b + i) ?? 0;
      peak = Math.max(peak, sum);
    }
    return peak;
  }

  async enrol(name: string, cpus: number, memoryMiB: number): Promise<string> {
    const { token } = await this.enrolment.createJoinToken({}, 'bench');
    const out = await this.enrolment.enrol({ joinToken: token, name, arch: 'x86_64', capacity: { cpus, memoryMiB, diskGiB: 1000 }, accel: 'tcg' });
    return out.credential;
  }
}

/** An image as the repository leaves it once processed: agents cache a ready image instead of asking for it again. */
export async function readyImage(store: Store, name: string): Promise<void> {
  await store.create({ kind: 'image', name, spec: { arch: 'x86_64' } }, by);
  await store.updateStatus({ kind: 'image', idOrName: name }, { phase: 'ready' }, by);
}

/** Follows the store and resolves when `done` holds for the set of VM ids whose status matches `pred`. */
export async function countWhile(store: Store, pred: (vm: AnyObject) => boolean, done: (n: number) => boolean, onMatch?: (vm: AnyObject) => void): Promise<void> {
  const ac = new AbortController();
  const seen = new Set<string>();
  try {
    for await (const ev of store.watch({ kinds: ['vm'], fromRevision: await store.revision() }, ac.signal)) {
      if (ev.type === 'bookmark') continue;
      if (ev.type === 'put' && pred(ev.object) && !seen.has(ev.object.id)) {
        seen.add(ev.object.id);
        onMatch?.(ev.object);
      } else if (ev.type === 'delete' || !pred(ev.object)) seen.delete(ev.object.id);
      if (done(seen.size)) return;
    }
  } finally {
    ac.abort();
  }
}
