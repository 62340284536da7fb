import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, statfs, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { parseJoinToken, type NodeCredential } from '../api/enrolment.ts';
import type { HostNetworkView } from '../api/kinds/network.ts';
import { systemClock } from '../base/clock.ts';
import { createLogger, type Logger } from '../base/logger.ts';
import { pinnedFetch } from '../base/pinned-fetch.ts';
import { ExecRunner } from '../base/runner.ts';
import { Client } from '../client/client.ts';
import { livenessFetch } from '../base/liveness-fetch.ts';
import { MetadataService } from '../metadata/metadata-service.ts';
import { RulesetApplier } from '../net/apply-ruleset.ts';
import { applyHostNetwork } from '../net/host-network.ts';
import { metadataIpv4 } from '../net/nft-ruleset.ts';
import { Agent } from './agent.ts';
import { AgentCache } from './agent-cache.ts';
import { HostNetworkSync } from './host-network-sync.ts';
import { agentEnv } from './config.ts';
import type { Driver } from './drivers/driver.ts';
import { FakeDriver } from './drivers/fake-driver.ts';
import { qemuEnv } from './drivers/qemu/config.ts';
import { detectAccel } from './drivers/qemu/detect-accel.ts';
import { QemuDriver } from './drivers/qemu/qemu-driver.ts';
import { localImages } from './local-images.ts';
import { NocloudSeeds } from './nocloud-seeds.ts';
import { SecretStore } from './secret-store.ts';
import { ImageCache } from './image-cache.ts';
import { contentOpener } from './image-pull.ts';
import { MetadataGuests } from './metadata-guests.ts';
import { AgentTunnel } from './tunnel.ts';

/** What the agent keeps in its data dir after enrolling (mode 0600). */
interface Identity {
  server: string;
  node: string;
  credential: string;
  expiresAt: string;
  /** sha256:<hex> of the server certificate, from the join token. */
  fingerprint?: string;
}

export interface AgentMainOptions {
  server?: string;
  joinToken?: string;
  dataDir: string;
  name?: string;
  label?: string[];
  driver: 'qemu' | 'fake';
  /** This host's address for VXLAN between hosts (networks stay host-local without it). */
  underlayIp?: string;
  /** Local base images by name (`<image-name>.qcow2`), used before the image cache: tests and air-gapped hosts. */
  imageDir?: string;
  /** Bound of the image cache in bytes; unused images beyond it are evicted. */
  imageCacheBytes?: number;
  /** Runtime files such as dnsmasq's per network (default /run/crowd/<node>); tests keep them in their own dir. */
  runDir?: string;
}

/** A fetch that trusts only the server certificate the join token named (none needed on plain loopback HTTP). */
/** The server sends watch bookmarks every 5 s (src/server/app.ts): two missed ones mean the link is gone. */
export const agentLiveness = { requestMs: 5_000, idleMs: 12_000 };

function fetchFor(fingerprint: string | undefined): typeof fetch | undefined {
  return fingerprint ? pinnedFetch(fingerprint).fetch : undefined;
}

function labelsOf(flags: string[] = []): Record<string, string> {
  return Object.fromEntries(
    flags.map((f) => {
      const eq = f.indexOf('=');
      if (eq < 1) throw new Error(`Invalid --label "${f}": expected key=value`);
      return [f.slice(0, eq), f.slice(eq + 1)];
    }),
  );
}

async function saveIdentity(path: string, id: Identity): Promise<void> {
  await writeFile(path, JSON.stringify(id, null, 2) + '\n', { mode: 0o600 });
  await chmod(path, 0o600);
}

/** Enrols once with a join token; afterwards the stored identity is used. */
async function identity(o: AgentMainOptions, accel: 'kvm' | 'tcg', log: Logger): Promise<Identity> {
  const path = join(o.dataDir, 'identity.json');
  if (existsSync(path)) return JSON.parse(await readFile(path, 'utf8')) as Identity;
  if (!o.server || !o.joinToken) throw new Error(`Cannot start the agent: ${path} is missing, so --server and --join-token are needed to enrol`);
  const parsed = parseJoinToken(o.joinToken);
  if (!parsed) throw new Error('Cannot enrol: the join token is malformed');
  const fingerprint = parsed.fingerprint ? `sha256:${parsed.fingerprint}` : undefined;
  if (o.server.startsWith('https:') && !fingerprint) throw new Error('Cannot enrol over https: the join token carries no server fingerprint');
  const fetchFn = fetchFor(fingerprint);
  const client = new Client({ baseUrl: o.server, ...(fetchFn ? { fetch: fetchFn } : {}) });
  const disk = await statfs(o.dataDir);
  const out = await client.http.json<NodeCredential>({
    method: 'POST',
    path: '/v1/nodes/enrol',
    body: {
      joinToken: o.joinToken,
      name: o.name ?? os.hostname().toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63),
      arch: os.arch() === 'arm64' ? 'aarch64' : 'x86_64',
      capacity: {
        cpus: os.cpus().length,
        memoryMiB: Math.floor(os.totalmem() / 1024 / 1024),
        diskGiB: Math.max(1, Math.floor((disk.bavail * disk.bsize) / 1024 ** 3)),
      },
      accel,
      labels: labelsOf(o.label),
    },
  });
  const node = (out.node as { name: string }).name;
  const id: Identity = { server: o.server, node, credential: out.credential, expiresAt: out.expiresAt, ...(fingerprint ? { fingerprint } : {}) };
  await saveIdentity(path, id);
  log.info({ node }, 'enrolled');
  return id;
}

/** The host network layer: the node's view from the server, applied through src/net as root. */
async function hostNetwork(o: AgentMainOptions, node: string, runner: ExecRunner, runAs: string | undefined, client: () => Client, log: Logger): Promise<HostNetworkSync> {
  if (o.underlayIp !== undefined && !isIP(o.underlayIp)) throw new Error(`Invalid --underlay-ip "${o.underlayIp}": expected an IPv4 or IPv6 address`);
  // dnsmasq drops privileges: its run dir (created on first use) and the parents must be searchable by everyone.
  const dnsmasqRunDir = o.runDir ?? join('/run/crowd', node);
  const tapOwner = runAs !== undefined ? Number((await runner.run({ argv: ['id', '-u', runAs] })).stdout.trim()) : undefined;
  // Remembers what it applied last, so a firewall edit reaches the kernel as a delta instead of a whole-table replace.
  const ruleset = new RulesetApplier();
  return new HostNetworkSync({
    options: { dnsmasqRunDir, ...(o.underlayIp ? { underlayIp: o.underlayIp } : {}), ...(tapOwner !== undefined ? { tapOwner } : {}) },
    fetchView: () => client().http.json<HostNetworkView>({ method: 'GET', path: `/v1/nodes/${node}/network` }),
    apply: (spec) => applyHostNetwork(spec, { runner, ruleset }),
    clock: systemClock,
    logger: log,
  });
}

/** Runs the agent until the signal aborts; `crowd up` and `crowd agent` both come here. */
export async function runAgent(o: AgentMainOptions, signal: AbortSignal, log: Logger = createLogger({ name: 'agent' })): Promise<void> {
  await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
  const runner = new ExecRunner();
  const env = qemuEnv();
  const accel =
    o.driver === 'fake' ? { accel: 'tcg' as const, reason: 'fake driver' } : await detectAccel({ runner, ...(env.accel ? { override: env.accel } : {}) });
  log.info({ accel: accel.accel, reason: accel.reason }, 'acceleration');
  let id = await identity(o, accel.accel, log);
  const idPath = join(o.dataDir, 'identity.json');
  const fetchFn = fetchFor(id.fingerprint);
  // Requests and the watch give up on a dead link instead of waiting out TCP's backoff after a partition heals.
  const apiFetch = livenessFetch(fetchFn ?? fetch, agentLiveness);
  const client = () => new Client({ baseUrl: id.server, authorization: `Bearer ${id.credential}`, fetch: apiFetch });
  // The VMs' own folders: the driver's files and their NoCloud seeds, removed together on destroy.
  const runDir = join(o.dataDir, 'vms');
  const driver: Driver =
    o.driver === 'fake'
      ? new FakeDriver()
      : new QemuDriver({ runDir, ...(env.runAs !== undefined ? { runAs: env.runAs } : {}) });
  const cache = new AgentCache(join(o.dataDir, 'cache.db'));
  const images = new ImageCache({
    dir: join(o.dataDir, 'images'),
    open: contentOpener(() => ({ url: id.server, authorization: `Bearer ${id.credential}` }), fetchFn),
    clock: systemClock,
    logger: log,
    ...(o.imageCacheBytes !== undefined ? { maxBytes: o.imageCacheBytes } : {}),
  });
  const local = o.imageDir !== undefined ? localImages(o.imageDir) : undefined;
  const network = o.driver === 'qemu' || o.underlayIp ? await hostNetwork(o, id.node, runner, env.runAs, client, log) : undefined;
  // One pipe per VM, shared by the tunnel (host side) and the metadata service (guest side); it listens only where the host network runs.
  const metadata: MetadataService = new MetadataService({ identify: (conn) => guests.identify(conn), logger: log });
  // Secret parameters: the tunnel fills the store, the metadata guests serve it; kept root-only under the data dir to survive a restart.
  const secrets = new SecretStore({ dir: join(o.dataDir, 'secrets'), logger: log });
  const place = { region: 'crowd', availabilityZone: id.node };
  const guests = new MetadataGuests({
    secrets,
    place,
    forget: (vmId) => metadata.forget(vmId),
    listen: () => metadata.listen([{ host: metadataIpv4, port: 80 }]),
    links: metadata,
    logger: log,
  });
  const agent = new Agent({
    ...(network ? { network, metadata: guests } : {}),
    nocloud: new NocloudSeeds({ runner, runDir, place }),
    node: id.node,
    client,
    driver,
    cache,
    clock: systemClock,
    logger: log,
    host: { accel: accel.accel, imagePath: (img) => local?.(img) ?? images.lookup(img), onImageChange: (l) => images.onChange(l) },
  });
  const renew = async () => {
    while (!signal.aborted) {
      const wait = Math.max(5000, (Date.parse(id.expiresAt) - Date.now()) / 2);
      await systemClock.sleep(wait, signal).catch(() => undefined);
      if (signal.aborted) return;
      try {
        const out = await client().http.json<NodeCredential>({ method: 'POST', path: `/v1/nodes/${id.node}/credential` });
        id = { ...id, credential: out.credential, expiresAt: out.expiresAt };
        await saveIdentity(idPath, id);
      } catch (e) {
        log.warn({ err: e instanceof Error ? e.message : String(e) }, 'credential renewal failed; retrying');
      }
    }
  };
  try {
    const tunnel = new AgentTunnel({
      server: id.server,
      node: id.node,
      authorization: () => `Bearer ${id.credential}`,
      ...(id.fingerprint ? { fingerprint: id.fingerprint } : {}),
      driver,
      pipes: metadata,
      secrets,
      locks: agent.locks,
      clock: systemClock,
      logger: log,
    });
    await Promise.all([agent.run(signal), renew(), tunnel.run(signal)]);
  } finally {
    await metadata.close();
    await images.close();
    await driver.close();
    cache.close();
  }
}

/** `crowd agent --server URL --join-token T --data-dir D`. */
export async function agentMain(argv: string[]): Promise<void> {
  const env = agentEnv();
  const cmd = new Command('crowd agent')
    .description('Run the host agent: enrols once with a join token, then connects out to the server')
    .option('--server <url>', 'the server URL (enrolment only; kept in the data dir)')
    .option('--join-token <token>', 'one-time join token from `crowd node join-token`')
    .option('--data-dir <dir>', 'where the agent keeps its identity, cache and VMs', env.dataDir)
    .option('--name <name>', 'node name (default: the host name)')
    .option('--label <key=value...>', 'node labels')
    .option('--underlay-ip <address>', "this host's address for VXLAN between hosts (VM networks span hosts only with it)")
    .option('--run-dir <dir>', "runtime files such as dnsmasq's per network (default /run/crowd/<node>)")
    .option('--image-dir <dir>', 'local base images by name, <image-name>.qcow2, used before pulling from the server')
    .option('--image-cache-bytes <n>', 'evict unused cached images beyond this many bytes (default 50 GiB)', (v: string) => {
      if (!/^\d{1,16}$/.test(v)) throw new Error(`Invalid --image-cache-bytes "${v}": expected a number of bytes`);
      return Number(v);
    })
    .addOption(new Option('--driver <driver>', 'VM driver').choices(['qemu', 'fake']).default('qemu'))
    .exitOverride();
  cmd.parse(argv, { from: 'user' });
  const o = cmd.opts<AgentMainOptions>();
  const ac = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort());
  await runAgent(o, ac.signal);
}
