import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Authenticator } from '../auth/authenticator.ts';
import { AuthChain } from '../auth/chain.ts';
import type { RateLimiter } from '../auth/rate-limiter.ts';
import { RoleAuthorizer } from '../auth/role-authorizer.ts';
import { ScopedTokenAuthenticator } from '../auth/scoped-token.ts';
import { tokenRevocation } from '../auth/server-auth.ts';
import { hashToken, StaticTokenAuthenticator } from '../auth/static-token.ts';
import type { Clock } from '../base/clock.ts';
import { silentLogger } from '../base/logger.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { Store } from '../store/store.ts';
import { buildApp, type AppDeps } from './app.ts';
import { NodeCredentialAuthenticator } from '../auth/node-credential.ts';
import { systemClock } from '../base/clock.ts';
import { ensureDefaultProject, ensureDefaultSite } from './bootstrap.ts';
import { Enrolment } from './enrolment.ts';
import { nodeRoutes } from './routes/nodes.ts';
import { TunnelRegistry } from './tunnel/tunnel-registry.ts';
import { imageRoutes, type ImageRoutesOptions } from './routes/images.ts';
import type { TotpEnrolmentState } from './routes/totp.ts';
import { IpamController } from './ipam/ipam-controller.ts';
import { Scheduler } from './scheduler/scheduler.ts';

/** The admin token every test app accepts. */
export const testToken = 'crowd_test-admin-token';

export interface TestApp {
  app: FastifyInstance;
  store: Store;
  /** `{authorization: 'Bearer <admin token>'}` for inject calls. */
  auth: { authorization: string };
  /** Mints and checks scoped tokens (a random key per app). */
  scoped: ScopedTokenAuthenticator;
  /** Host enrolment, when built with `nodes: true`. */
  enrolment?: Enrolment;
  /** Enrols a host through the API (needs `nodes: true`); its `Authorization` header value. */
  enrol(name: string, capacity?: { cpus: number; memoryMiB: number; diskGiB: number }): Promise<string>;
  /** Creates machine type "small" (cpus 1–4), image "debian" and network "lan", what a VM needs. */
  seed(): Promise<void>;
  close(): Promise<void>;
}

/**
 * An app over an in-memory SQLite store with the `default` project and one
 * admin token, for route, client and CLI tests; `tokens: true` adds the
 * scoped-token and role-binding routes (and, given `totp`, TOTP enrolment);
 * `controllers: true` runs the scheduler and IPAM beside it until `close`.
 */
export async function buildTestApp(
  opts: { clock?: Clock; authenticators?: Authenticator[]; nodes?: boolean; limiter?: RateLimiter; tokens?: boolean; totp?: TotpEnrolmentState; images?: Omit<ImageRoutesOptions, 'store' | 'logger' | 'clock'>; controllers?: boolean } & Partial<Pick<AppDeps, 'bodyLimit' | 'watchBookmarkMs' | 'plugins'>> = {},
): Promise<TestApp> {
  const store = new SqliteStore({ path: ':memory:', ...(opts.clock ? { clock: opts.clock } : {}) });
  await ensureDefaultProject(store);
  const clock = opts.clock ?? systemClock;
  let enrolment: Enrolment | undefined;
  const authenticators = [...(opts.authenticators ?? [])];
  const plugins = [...(opts.plugins ?? [])];
  if (opts.nodes) {
    await ensureDefaultSite(store);
    enrolment = new Enrolment({ store, clock });
    authenticators.push(new NodeCredentialAuthenticator((id) => store.getCredential(id), clock));
    plugins.push(nodeRoutes(enrolment));
  }
  if (opts.images) plugins.push(imageRoutes({ ...opts.images, store, logger: silentLogger(), clock }));
  const scoped = new ScopedTokenAuthenticator({ keys: [randomBytes(32)], clock, isRevoked: tokenRevocation(store), logger: silentLogger() });
  const app = await buildApp({
    store,
    auth: new AuthChain([new StaticTokenAuthenticator([{ name: 'admin', sha256: hashToken(testToken) }]), scoped, ...authenticators]),
    authorizer: new RoleAuthorizer(),
    ...(opts.limiter ? { limiter: opts.limiter } : {}),
    ...(opts.tokens ? { accounts: { scoped, ...(opts.totp ? { totp: opts.totp } : {}) } } : {}),
    logger: silentLogger(),
    ...(opts.nodes ? { tunnels: new TunnelRegistry({ logger: silentLogger() }) } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.bodyLimit ? { bodyLimit: opts.bodyLimit } : {}),
    ...(opts.watchBookmarkMs ? { watchBookmarkMs: opts.watchBookmarkMs } : {}),
    plugins,
  });
  const stop = new AbortController();
  const controllers = opts.controllers
    ? [new Scheduler({ store, logger: silentLogger(), clock }).run(stop.signal), new IpamController({ store, logger: silentLogger(), clock }).run(stop.signal)]
    : [];
  return {
    app,
    store,
    auth: { authorization: `Bearer ${testToken}` },
    scoped,
    ...(enrolment ? { enrolment } : {}),
    enrol: async (name, capacity = { cpus: 4, memoryMiB: 4096, diskGiB: 50 }) => {
      if (!enrolment) throw new Error('Cannot enrol a host: build the test app with nodes: true');
      const { token } = await enrolment.createJoinToken({}, 'admin');
      const res = await app.inject({ method: 'POST', url: '/v1/nodes/enrol', payload: { joinToken: token, name, arch: 'x86_64', capacity, accel: 'tcg' } });
      if (res.statusCode !== 201) throw new Error(`Cannot enrol host "${name}": ${res.body}`);
      return `Bearer ${res.json<{ credential: string }>().credential}`;
    },
    seed: async () => {
      const by = { author: 'seed' };
      await store.create({ kind: 'machine-type', name: 'small', spec: { cpus: 1, memoryMiB: 512, diskGiB: 10, ranges: { cpus: { min: 1, max: 4 } } } }, by);
      await store.create({ kind: 'image', name: 'debian', spec: { arch: 'x86_64' } }, by);
      await store.create({ kind: 'network', name: 'lan', spec: { ipv4: { subnet: '10.0.0.0/24' } } }, by);
    },
    close: async () => {
      stop.abort();
      await Promise.all(controllers);
      await app.close();
      await store.close();
    },
  };
}
