import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { systemClock, type Clock } from '../base/clock.ts';
import type { Runner } from '../base/runner.ts';
import { dnsmasqPaths, renderDnsmasq, type DnsmasqOptions } from './dnsmasq-config.ts';

/** Seeing and signalling processes; injected so tests can stand in for them. */
export interface ProcessTable {
  /** The command line of a live process, or undefined when there is none. */
  cmdline(pid: number): string | undefined;
  signal(pid: number, sig: 'SIGHUP' | 'SIGTERM' | 'SIGKILL'): void;
}

/** The real process table: /proc and kill(2). */
export const procProcessTable: ProcessTable = {
  cmdline(pid) {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() || undefined;
    } catch {
      return undefined;
    }
  },
  signal(pid, sig) {
    process.kill(pid, sig);
  },
};

/** What the dnsmasq applier needs from the outside world. */
export interface DnsmasqDeps {
  runner: Runner;
  processes?: ProcessTable;
  clock?: Clock;
}

/** What applying did, for logs and tests. */
export type DnsmasqOutcome = 'started' | 'restarted' | 'reloaded' | 'unchanged';

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function writeAtomic(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text, { mode: 0o644 });
  renameSync(`${path}.tmp`, path);
}

/** The pid of this network's dnsmasq if it is running with our config file. */
function runningPid(paths: ReturnType<typeof dnsmasqPaths>, processes: ProcessTable): number | undefined {
  const pid = Number(readText(paths.pid)?.trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const cmd = processes.cmdline(pid);
  return cmd?.includes('dnsmasq') && cmd.includes(paths.config) ? pid : undefined;
}

async function stop(pid: number, processes: ProcessTable, clock: Clock): Promise<void> {
  processes.signal(pid, 'SIGTERM');
  for (let waited = 0; processes.cmdline(pid) !== undefined; waited += 20) {
    if (waited >= 5000) {
      processes.signal(pid, 'SIGKILL');
      return;
    }
    await clock.sleep(20);
  }
}

/**
 * Brings one network's dnsmasq to the rendered config: starts it detached
 * (it daemonizes and outlives the agent; found again through its pid file),
 * SIGHUPs it when only the static leases changed, restarts it when the config
 * changed, and leaves it alone otherwise. A config dnsmasq rejects is
 * refused before the running one is touched. The run dir's parents must be
 * searchable by dnsmasq's unprivileged user (it re-reads leases after dropping root).
 */
export async function applyDnsmasq(opts: DnsmasqOptions, deps: DnsmasqDeps): Promise<DnsmasqOutcome> {
  const processes = deps.processes ?? procProcessTable;
  const { config, hosts } = renderDnsmasq(opts);
  const paths = dnsmasqPaths(opts.runDir, opts.network);
  mkdirSync(opts.runDir, { recursive: true });
  // dnsmasq re-reads the lease file as an unprivileged user after a SIGHUP.
  chmodSync(opts.runDir, 0o755);
  const pid = runningPid(paths, processes);
  const sameConfig = readText(paths.config) === config;
  if (pid !== undefined && sameConfig) {
    if (readText(paths.hosts) === hosts) return 'unchanged';
    writeAtomic(paths.hosts, hosts);
    processes.signal(pid, 'SIGHUP');
    return 'reloaded';
  }
  const candidate = `${paths.config}.new`;
  writeFileSync(candidate, config, { mode: 0o644 });
  try {
    await deps.runner.run({ argv: ['dnsmasq', '--test', `--conf-file=${candidate}`] });
  } catch (e) {
    rmSync(candidate, { force: true });
    throw new Error(`Cannot start dnsmasq for network "${opts.network}": dnsmasq rejects the config`, { cause: e });
  }
  if (pid !== undefined) await stop(pid, processes, deps.clock ?? systemClock);
  writeAtomic(paths.hosts, hosts);
  renameSync(candidate, paths.config);
  await deps.runner.run({ argv: ['dnsmasq', `--conf-file=${paths.config}`] });
  return pid === undefined ? 'started' : 'restarted';
}

/** Stops one network's dnsmasq (when the network leaves the host) and removes its files. */
export async function stopDnsmasq(where: { network: string; runDir: string }, deps: Omit<DnsmasqDeps, 'runner'> = {}): Promise<void> {
  const processes = deps.processes ?? procProcessTable;
  const paths = dnsmasqPaths(where.runDir, where.network);
  const pid = runningPid(paths, processes);
  if (pid !== undefined) await stop(pid, processes, deps.clock ?? systemClock);
  for (const p of Object.values(paths)) rmSync(p, { force: true });
}
