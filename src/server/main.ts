import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { AuthChain } from '../auth/chain.ts';
import { RoleAuthorizer } from '../auth/role-authorizer.ts';
import { buildServerAuth } from '../auth/server-auth.ts';
import { TotpAuthenticator } from '../auth/totp.ts';
import { systemClock, type Clock } from '../base/clock.ts';
import { createLogger, type Logger } from '../base/logger.ts';
import { ExecRunner, type Runner } from '../base/runner.ts';
import { openStore } from '../store/open-store.ts';
import type { Store } from '../store/store.ts';
import { buildApp } from './app.ts';
import { ensureAdminToken, ensureDefaultProject, ensureDefaultSite, writeCliConfig } from './bootstrap.ts';
import { Enrolment } from './enrolment.ts';
import { nodeRoutes } from './routes/nodes.ts';
import { CredentialTotpState } from '../auth/credential-totp-state.ts';
import { ImageRepository } from './images/image-repository.ts';
import { imageRoutes } from './routes/images.ts';
import { runLeaseMonitor } from './scheduler/node-lease.ts';
import { hostNetworkRoutes } from './ipam/host-network-view.ts';
import { IpamController } from './ipam/ipam-controller.ts';
import { Scheduler } from './scheduler/scheduler.ts';
import { TunnelRegistry } from './tunnel/tunnel-registry.ts';
import { processEnv, serverPaths, type Env } from './config.ts';
import { isLoopback, parseListenAddress, serverUrl, type ListenAddress } from './listen-address.ts';
import { certFingerprint, ensureSelfSignedCert, readTlsFiles, type TlsFiles } from './tls.ts';

/** The process around a server run, injectable so tests can run one in-process. */
export interface MainIo {
  env: Env;
  stdout: { write(text: string): unknown };
  /** Where the JSON log goes. */
  stderr: NodeJS.WritableStream;
  /** Stops the server; by default SIGINT or SIGTERM. */
  signal?: AbortSignal;
  runner?: Runner;
  clock?: Clock;
  /** Called once the server listens, with its URL. */
  onListening?: (url: string) => void;
}

/** What `crowd up` hands its local agent once the server listens. */
export interface LocalAgentContext {
  url: string;
  /** A fresh one-time join token for the default site. */
  joinToken(): Promise<string>;
  dataDir: string;
  logger: Logger;
  signal: AbortSignal;
}

/** Runs the all-in-one's agent; wired by the binary (the server does not import the agent). */
export type LocalAgent = (ctx: LocalAgentContext) => Promise<void>;

/** A node that sent no heartbeat for this long is marked unreachable. */
const leaseMs = 40_000;

function processIo(): MainIo {
  return { env: processEnv(), stdout: process.stdout, stderr: process.stderr };
}

/** How often the server compacts history by the store's default policy. */
const compactEveryMs = 3600 * 1000;

interface RunOptions {
  storeUrl: string;
  listen: ListenAddress;
  dataDir: string;
  tlsCert?: string;
  tlsKey?: string;
  /** The authenticator chain's config file (YAML or JSON); default: static tokens, scoped tokens, host credentials. */
  authConfig?: string;
  /** Write the CLI's config here on first start, if the file does not exist. */
  cliConfig?: string;
  localAgent?: LocalAgent;
  /** Bytes of stored images each project may hold (unlimited when absent). */
  imageQuotaBytes?: number;
}

function parseFlags(name: string, argv: string[], io: MainIo, define: (c: Command) => Command): Record<string, string> | undefined {
  const cmd = define(new Command(name))
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stdout.write(s) })
    .allowExcessArguments(false);
  try {
    cmd.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError && (e.code === 'commander.helpDisplayed' || e.code === 'commander.version')) return undefined;
    throw new Error(`Invalid arguments for "${name}": ${(e as Error).message.replace(/^error: /, '')}`);
  }
  return cmd.opts<Record<string, string>>();
}

/** `crowd server`: the API server for one site, on any address (TLS unless loopback). */
export async function serverMain(argv: string[], io: MainIo = processIo()): Promise<void> {
  const flags = parseFlags('crowd server', argv, io, (c) =>
    c
      .description('Run the API server')
      .option('--store <url>', 'store URL, e.g. sqlite:/var/lib/crowd/crowd.db (default: sqlite in the data dir)')
      .option('--listen <addr>', 'HOST:PORT to listen on; any non-loopback address serves TLS', '127.0.0.1:7470')
      .option('--data-dir <dir>', 'where tokens, the self-signed certificate and the default store live')
      .option('--auth-config <file>', 'authenticators in order, YAML or JSON (see docs/api.md, Authentication)')
      .option('--tls-cert <file>', 'PEM certificate (with --tls-key)')
      .option('--tls-key <file>', 'PEM private key (with --tls-cert)')
      .option('--image-quota-bytes <n>', 'bytes of stored images each project may hold (default: unlimited)'),
  );
  if (!flags) return;
  const dataDir = flags.dataDir ?? serverPaths(io.env).dataDir;
  await run(
    {
      storeUrl: flags.store ?? `sqlite:${join(dataDir, 'crowd.db')}`,
      listen: parseListenAddress(flags.listen!),
      dataDir,
      ...(flags.authConfig ? { authConfig: flags.authConfig } : {}),
      ...(flags.tlsCert ? { tlsCert: flags.tlsCert } : {}),
      ...(flags.tlsKey ? { tlsKey: flags.tlsKey } : {}),
      ...(flags.imageQuotaBytes !== undefined ? { imageQuotaBytes: byteCount(flags.imageQuotaBytes, '--image-quota-bytes') } : {}),
    },
    io,
  );
}

/** `crowd up`: everything on this machine, on loopback, with SQLite in the data dir and the CLI configured on first start. */
export async function upMain(argv: string[], io: MainIo = processIo(), localAgent?: LocalAgent): Promise<void> {
  const flags = parseFlags('crowd up', argv, io, (c) =>
    c
      .description('Run crowdcloud on this machine (loopback only)')
      .option('--data-dir <dir>', 'data directory (default: $XDG_DATA_HOME/crowd or ~/.local/share/crowd)')
      .option('--listen <addr>', 'loopback HOST:PORT to listen on', '127.0.0.1:7470'),
  );
  if (!flags) return;
  const paths = serverPaths(io.env);
  const listen = parseListenAddress(flags.listen!);
  if (!isLoopback(listen.host)) throw new Error(`Cannot run "crowd up" on "${flags.listen}": it serves loopback only; use "crowd server" for other addresses`);
  const dataDir = flags.dataDir ?? paths.dataDir;
  await run({ storeUrl: `sqlite:${join(dataDir, 'crowd.db')}`, listen, dataDir, cliConfig: paths.cliConfig, ...(localAgent ? { localAgent } : {}) }, io);
}

function byteCount(text: string, flag: string): number {
  if (!/^\d{1,16}$/.test(text)) throw new Error(`Invalid ${flag} "${text}": expected a number of bytes`);
  return Number(text);
}

/** Names and addresses a self-signed certificate should cover for a bind address. */
function certificateHosts(host: string): string[] {
  if (host !== '0.0.0.0' && host !== '::') return [host];
  const addresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address.replace(/%.*$/, '')));
  return [hostname(), ...addresses];
}

async function tlsFor(opts: RunOptions, runner: Runner): Promise<TlsFiles | undefined> {
  if (opts.tlsCert !== undefined || opts.tlsKey !== undefined) {
    if (opts.tlsCert === undefined || opts.tlsKey === undefined) throw new Error('Cannot serve TLS: --tls-cert and --tls-key go together');
    return readTlsFiles(opts.tlsCert, opts.tlsKey);
  }
  if (isLoopback(opts.listen.host)) return undefined;
  return ensureSelfSignedCert(runner, opts.dataDir, certificateHosts(opts.listen.host));
}

async function compactPeriodically(store: Store, clock: Clock, logger: Logger, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      await clock.sleep(compactEveryMs, signal);
      const { compactedRevision } = await store.compact();
      logger.info({ compactedRevision }, 'history compacted');
    } catch (err) {
      if (!signal.aborted) logger.error({ err }, 'cannot compact history');
    }
  }
}

function stopSignal(io: MainIo): { signal: AbortSignal; dispose(): void } {
  if (io.signal) return { signal: io.signal, dispose: () => {} };
  const ctl = new AbortController();
  const stop = () => ctl.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    signal: ctl.signal,
    dispose: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}

/** Opens the store, bootstraps tokens and the default project, serves until stopped, then shuts down gracefully. */
async function run(opts: RunOptions, io: MainIo): Promise<void> {
  const clock = io.clock ?? systemClock;
  const runner = io.runner ?? new ExecRunner();
  const stop = stopSignal(io);
  try {
    await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
    const https = await tlsFor(opts, runner);
    const logger = createLogger({ name: 'crowd', destination: io.stderr });
    const { tokens, created } = await ensureAdminToken(opts.dataDir);
    const store = await openStore(opts.storeUrl, { clock });
    try {
      await ensureDefaultProject(store);
      await ensureDefaultSite(store);
      const authConfig = opts.authConfig ? { configFile: opts.authConfig } : {};
      const totpState = new CredentialTotpState(store, () => clock.now());
      const serverAuth = await buildServerAuth({ dataDir: opts.dataDir, ...authConfig, staticTokens: tokens, credentials: store, logger, clock, totpState });
      const usesTotp = serverAuth.authenticators.some((a) => a instanceof TotpAuthenticator);
      const authorizer = new RoleAuthorizer();
      const fingerprint = https ? certFingerprint(https.cert).replace(/^sha256:/, '') : undefined;
      const enrolment = new Enrolment({ store, clock, ...(fingerprint ? { fingerprint } : {}) });
      const images = imageRoutes({
        repo: new ImageRepository({ dataDir: join(opts.dataDir, 'images'), runner, clock }),
        store,
        logger,
        clock,
        ...(opts.imageQuotaBytes !== undefined ? { quotaBytesPerProject: opts.imageQuotaBytes } : {}),
      });
      const app = await buildApp({
        store,
        auth: new AuthChain(serverAuth.authenticators),
        authorizer,
        accounts: { ...(serverAuth.scoped ? { scoped: serverAuth.scoped } : {}), ...(usesTotp ? { totp: totpState } : {}) },
        logger,
        clock,
        tunnels: new TunnelRegistry({ logger }),
        plugins: [nodeRoutes(enrolment), images, hostNetworkRoutes(() => store)],
        ...(https ? { https: { cert: https.cert, key: https.key } } : {}),
      });
      await app.listen({ host: opts.listen.host, port: opts.listen.port });
      const url = serverUrl({ host: opts.listen.host, port: (app.server.address() as AddressInfo).port }, https !== undefined);
      io.stdout.write(`crowd is serving ${url}\n`);
      if (https) io.stdout.write(`TLS certificate fingerprint: ${certFingerprint(https.cert)}\n`);
      if (created) {
        io.stdout.write(`Admin token (shown only now; its hash is in ${join(opts.dataDir, 'static-tokens.json')}):\n  ${created}\n`);
        if (opts.cliConfig && (await writeCliConfig(opts.cliConfig, { server: url, token: created }))) {
          io.stdout.write(`Wrote the CLI config ${opts.cliConfig}\n`);
        }
      }
      io.onListening?.(url);
      const background = [
        compactPeriodically(store, clock, logger, stop.signal),
        new Scheduler({ store, logger, clock }).run(stop.signal),
        new IpamController({ store, logger, clock }).run(stop.signal),
        runLeaseMonitor({ store, clock, logger }, leaseMs, stop.signal),
      ];
      if (opts.localAgent) {
        const agentDir = join(opts.dataDir, 'agent');
        const joinToken = async () => (await enrolment.createJoinToken({}, 'system:up')).token;
        background.push(
          opts.localAgent({ url, joinToken, dataDir: agentDir, logger, signal: stop.signal }).catch((err: unknown) => {
            logger.error({ err: err instanceof Error ? err.message : String(err) }, 'the local agent stopped');
          }),
        );
      }
      if (!stop.signal.aborted) await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
      logger.info('shutting down');
      await app.close();
      await Promise.all(background);
    } finally {
      await store.close();
    }
  } finally {
    stop.dispose();
  }
}
