import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import type { AnyObject } from '../../src/api/object.ts';
import { hashToken } from '../../src/auth/static-token.ts';
import { Client } from '../../src/client/client.ts';
import { isVmProcess, readPid } from '../../src/agent/drivers/qemu/qemu-process.ts';
import { staticTokensFile } from '../../src/server/bootstrap.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const crowdTs = join(repo, 'src/crowd.ts');

/** A `crowd …` child process with the tail of its output kept for failure messages. */
export interface CrowdProcess {
  child: ChildProcess;
  pid: number;
  output(): string;
  /** Sends a signal and waits for the exit (SIGKILL after 10 s). */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** `node crowd.ts ARGS`, inside network namespace `netns` when given (`ip netns exec` execs, so the pid stays the node's). */
function crowdCommand(args: string[], netns?: string): [string, string[]] {
  const node = [process.execPath, '--import', 'tsx', crowdTs, ...args];
  return netns ? ['ip', ['netns', 'exec', netns, ...node]] : [node[0]!, node.slice(1)];
}

function launch(args: string[], env: NodeJS.ProcessEnv = {}, netns?: string): CrowdProcess {
  const child = spawn(...crowdCommand(args, netns), { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  const keep = (b: Buffer) => (out = (out + b.toString()).slice(-64 * 1024));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = once(child, 'exit');
  return {
    child,
    pid: child.pid!,
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resolves once the process prints a line matching `re`; rejects if it exits first or after `timeoutMs`. */
function printed(p: CrowdProcess, re: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
  return new Promise((resolveMatch, reject) => {
    const check = () => {
      const m = re.exec(p.output());
      if (!m) return;
      done();
      resolveMatch(m);
    };
    const fail = () => {
      done();
      reject(new Error(`crowd exited before printing ${re}: ${p.output()}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`crowd did not print ${re} within ${timeoutMs} ms: ${p.output()}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      p.child.stdout!.off('data', check);
      p.child.off('exit', fail);
    };
    p.child.stdout!.on('data', check);
    p.child.once('exit', fail);
    check();
  });
}

/** Writes the static admin token the server will accept (only its hash), as `crowd server` keeps it. */
export function seedAdminToken(dataDir: string, token: string): void {
  writeFileSync(join(dataDir, staticTokensFile), JSON.stringify({ tokens: [{ name: 'admin', sha256: hashToken(token) }] }), { mode: 0o600 });
}

/**
 * `crowd server` on loopback (port 0: any free one), or on `o.host` inside namespace `o.netns` (then with its
 * self-signed TLS certificate); resolves with its URL, and the certificate's fingerprint, once it serves.
 */
export async function startServer(dataDir: string, port = 0, o: { host?: string; netns?: string } = {}): Promise<{ proc: CrowdProcess; url: string; fingerprint?: string }> {
  const proc = launch(['server', '--listen', `${o.host ?? '127.0.0.1'}:${port}`, '--data-dir', dataDir], {}, o.netns);
  const m = await printed(proc, /serving (https?:\/\/\S+)/);
  if (m[1]!.startsWith('http:')) return { proc, url: m[1]! };
  return { proc, url: m[1]!, fingerprint: (await printed(proc, /fingerprint: (sha256:[0-9a-f]+)/))[1]! };
}

/** `crowd agent` (TCG, real QEMU unless `driver` says otherwise, inside namespace `netns` when given); enrols when given a join token. */
export function startAgent(o: {
  dataDir: string;
  imageDir: string;
  server?: string;
  joinToken?: string;
  name?: string;
  labels?: string[];
  driver?: 'qemu' | 'fake';
  underlayIp?: string;
  runDir?: string;
  netns?: string;
}): CrowdProcess {
  const args = ['agent', '--data-dir', o.dataDir, '--image-dir', o.imageDir];
  if (o.server) args.push('--server', o.server);
  if (o.joinToken) args.push('--join-token', o.joinToken);
  if (o.name) args.push('--name', o.name);
  for (const l of o.labels ?? []) args.push('--label', l);
  if (o.driver) args.push('--driver', o.driver);
  if (o.underlayIp) args.push('--underlay-ip', o.underlayIp);
  if (o.runDir) args.push('--run-dir', o.runDir);
  return launch(args, { CROWD_ACCEL: 'tcg' }, o.netns);
}

/** Runs the `crowd` CLI as its own process against `url` with `token` (inside namespace `o.netns` when given). */
export async function crowd(url: string, token: string, argv: string[], env: NodeJS.ProcessEnv = {}, o: { netns?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(...crowdCommand(argv, o.netns), {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CROWD_URL: url, CROWD_TOKEN: token, CROWD_CONFIG: '/nonexistent/crowd-e2e.yaml', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code: code ?? -1, stdout, stderr };
}

/**
 * Waits for the first version of an object that satisfies `pred`, following
 * the watch and riding out server restarts; fails after `timeoutMs`.
 */
export async function objectWhen(
  client: Client,
  kind: string,
  name: string,
  pred: (o: AnyObject) => boolean,
  timeoutMs = 60_000,
): Promise<AnyObject> {
  const deadline = Date.now() + timeoutMs;
  let last: AnyObject | undefined;
  while (Date.now() < deadline) {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), deadline - Date.now());
    try {
      const cur = await client.resource(kind).get(name);
      last = cur;
      if (pred(cur)) return cur;
      for await (const ev of client.watch({ kinds: [kind], revision: cur.revision, signal: ac.signal })) {
        if (ev.type !== 'put' || ev.object.name !== name) continue;
        last = ev.object;
        if (pred(ev.object)) return ev.object;
      }
    } catch {
      // The server is restarting or the stream broke: look again shortly.
    } finally {
      clearTimeout(timer);
      ac.abort();
    }
    if (Date.now() < deadline) await delay(200);
  }
  throw new Error(`${kind} "${name}" did not reach the expected state within ${timeoutMs} ms; last seen: ${JSON.stringify(last?.status)}`);
}

/** Polls a condition until it holds; for things with no event to wait on (a process exiting, a file appearing). */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(50);
  }
}

/** Kills every QEMU the agent left under `<agentDir>/vms/*` (the driver leaves them running on purpose). */
export async function killLeftoverQemus(agentDir: string): Promise<void> {
  const vms = join(agentDir, 'vms');
  let ids: string[] = [];
  try {
    ids = readdirSync(vms);
  } catch {
    return;
  }
  for (const id of ids) {
    const pidFile = join(vms, id, 'qemu.pid');
    const pid = await readPid(pidFile);
    if (pid && (await isVmProcess(pid, pidFile))) process.kill(pid, 'SIGKILL');
  }
}
