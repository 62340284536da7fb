import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { ApiError } from '../../../api/errors.ts';
import { Reverter } from '../../../base/reverter.ts';
import type { Driver, StopOptions, VmExit, VmInfo } from '../driver.ts';
import { checkVmConfig, nicProblems, type NicConfig, type VmConfig } from '../vm-config.ts';
import { readConsoleLog, rotateConsoleLog } from './console-log.ts';
import { qemuArgv } from './qemu-argv.ts';
import { plugNic, queryNics, unplugNic } from './qemu-hotplug.ts';
import { freePort, isPcie, nicIds, nicPortCount, portId, type PluggedNic } from './qemu-nics.ts';
import { isVmProcess, pidFileTime, qemuStderr, readPid, spawnDetached, waitGone } from './qemu-process.ts';
import { createQcow2, type Qcow2Backing } from './qcow2-image.ts';
import { QmpClient } from './qmp-client.ts';
import { maxSocketPath, vmPaths, type VmPaths } from './vm-paths.ts';

export interface QemuDriverOptions {
  /** Each VM gets `<runDir>/<id>/`; must survive agent restarts. */
  runDir: string;
  qemuBinary?: string;
  /**
   * User QEMU drops to when the agent runs as root; `null` disables. Default:
   * "crowd-qemu" if that user exists, else "nobody". Ignored when not root.
   */
  runAs?: string | null;
  machine?: string;
  /** How long QEMU may take to answer on QMP after spawning (default 30 s). */
  startTimeoutMs?: number;
  /** The console log is rotated at this size, keeping one old file (default 1 MiB). */
  consoleLogMaxBytes?: number;
  /** How often running VMs' console logs are checked for rotation (default 10 s). */
  consoleCheckMs?: number;
}

interface Tracked {
  config: VmConfig;
  paths: VmPaths;
  pid?: number;
  startedAt?: number;
  qmp?: QmpClient;
  /** Set while the driver itself is stopping the VM, so its exit is not a crash. */
  stopping: boolean;
  childExit?: { code: number | null; signal: NodeJS.Signals | null };
  console?: Duplex;
  /** The NICs the running QEMU holds; unknown until asked over QMP after a re-adoption. */
  nics?: PluggedNic[];
  /** Reserved root ports (q35). */
  ports?: string[];
  /** Taps whose unplug a detachNic call is waiting for; other releases are cleaned up by the monitor. */
  detaching: Set<string>;
}

function defaultRunAs(): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const users = new Set(readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')[0]));
  return ['crowd-qemu', 'nobody'].find((u) => users.has(u));
}

function describeExit(e: Tracked['childExit']): string {
  if (!e) return 'exited unexpectedly';
  return e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
}

/** One detached qemu-system-x86_64 per VM, driven over QMP; see driver.ts for the contract. */
export class QemuDriver implements Driver {
  private readonly vms = new Map<string, Tracked>();
  /** VMs whose start is under way: `list` leaves them out rather than mistake a QEMU not yet spawned for a crashed one. */
  private readonly starting = new Set<string>();
  private readonly runAs: string | undefined;
  private readonly consoleMax: number;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: QemuDriverOptions) {
    this.runAs = process.getuid?.() !== 0 || opts.runAs === null ? undefined : (opts.runAs ?? defaultRunAs());
    this.consoleMax = opts.consoleLogMaxBytes ?? 1024 * 1024;
    this.timer = setInterval(() => void this.rotateAll(), opts.consoleCheckMs ?? 10_000).unref();
  }

  async start(config: VmConfig): Promise<VmInfo> {
    checkVmConfig(config);
    const p = vmPaths(this.opts.runDir, config.id);
    if (Buffer.byteLength(p.consoleSocket) > maxSocketPath) {
      throw new ApiError('invalid', `Cannot start vm "${config.name}": run dir "${this.opts.runDir}" is too long for unix sockets`);
    }
    if (this.starting.has(config.id)) throw new ApiError('conflict', `Cannot start vm "${config.name}": it is being started`);
    this.starting.add(config.id);
    try {
      await this.startTracked(config, p);
    } finally {
      this.starting.delete(config.id);
    }
    return this.info(this.vms.get(config.id)!);
  }

  private async startTracked(config: VmConfig, p: VmPaths): Promise<void> {
    const known = this.vms.get(config.id) ?? (existsSync(p.config) ? await this.load(config.id) : undefined);
    if (known && (await this.alive(known))) throw new ApiError('conflict', `Cannot start vm "${config.name}": vm is already running`);
    const t: Tracked = known ?? { config, paths: p, stopping: false, detaching: new Set() };
    t.config = config;
    const rev = new Reverter();
    try {
      if (!known) {
        await mkdir(p.dir, { recursive: true, mode: 0o700 });
        rev.add(() => rm(p.dir, { recursive: true, force: true }));
      }
      await writeFile(p.config, JSON.stringify(config, null, 2), { mode: 0o600 });
      await this.createDisks(config, p);
      await Promise.all([p.pidFile, p.qmpSocket, p.consoleSocket, p.exitFile].map((f) => rm(f, { force: true })));
      await this.spawn(t, rev);
      rev.success();
    } finally {
      await rev.revert();
    }
    const pcie = isPcie(this.machine);
    t.nics = (config.nics ?? []).map((n, i) => ({ ...n, ...(pcie ? { port: portId(i) } : {}) }));
    t.ports = pcie ? Array.from({ length: nicPortCount(t.nics.length) }, (_, i) => portId(i)) : [];
    this.vms.set(config.id, t);
  }

  async inspect(id: string): Promise<VmInfo> {
    return this.info(await this.get(id));
  }

  async stop(id: string, opts: StopOptions = {}): Promise<VmInfo> {
    const t = await this.get(id);
    if (!(await this.alive(t))) {
      const exit = (await this.info(t)).exit;
      // A guest that powered off on its own, now also stopped on request: a later power-on starts it under any restart policy.
      if (exit?.kind === 'poweroff') await this.writeExit(t, { ...exit, kind: 'stopped' });
      return this.info(t);
    }
    const timeoutMs = opts.timeoutMs ?? 30_000;
    t.stopping = true;
    try {
      const asked = await this.qmp(t).then((q) => q.execute('system_powerdown')).then(() => true, () => false);
      const graceful = asked && (await waitGone(t.pid, t.paths.pidFile, timeoutMs));
      if (!graceful) await this.kill(t);
      await this.writeExit(t, graceful
        ? { kind: 'stopped', message: 'the guest powered off on request', at: Date.now() }
        : { kind: 'forced', message: `the guest did not power off within ${timeoutMs} ms`, at: Date.now() });
    } finally {
      t.stopping = false;
    }
    return this.info(t);
  }

  async reboot(id: string, opts: StopOptions = {}): Promise<VmInfo> {
    const t = await this.get(id);
    await this.stop(id, opts);
    return this.start(t.config);
  }

  async reset(id: string): Promise<VmInfo> {
    const t = await this.running(id, 'reset');
    await (await this.qmp(t)).execute('system_reset');
    return this.info(t);
  }

  async destroy(id: string): Promise<void> {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) return;
    const p = vmPaths(this.opts.runDir, id);
    // Even with an unreadable config.json, a QEMU named by the pid file is stopped before its files go.
    const t: Tracked = this.vms.get(id) ??
      (await this.load(id).catch(async () => ({ config: { id, name: id } as VmConfig, paths: p, stopping: false, detaching: new Set<string>(), pid: await readPid(p.pidFile) })));
    if (await this.alive(t)) {
      t.stopping = true;
      await this.kill(t);
    }
    t.qmp?.close();
    t.console?.destroy();
    this.vms.delete(id);
    await rm(p.dir, { recursive: true, force: true });
  }

  async recover(id: string): Promise<VmInfo> {
    const t = this.vms.get(id) ?? (await this.load(id));
    this.vms.set(id, t);
    // A VM whose monitor is open is watched (its SHUTDOWN event is handled): no round trip per list.
    if (!t.qmp && (await this.alive(t))) {
      // A QEMU that does not answer yet is still reported running; its monitor is retried on next use.
      const status = await this.qmp(t).then((q) => q.execute<{ status: string }>('query-status')).catch(() => undefined);
      // -no-shutdown: a guest that powered off while nobody watched is still here, paused.
      if (status?.status === 'shutdown') await this.finishPoweroff(t);
      else if (status && !t.nics) await this.learnNics(t).catch(() => undefined);
    }
    return this.info(t);
  }

  async attachNic(id: string, nic: NicConfig): Promise<VmInfo> {
    const t = await this.running(id, 'hot-plug a NIC into');
    const problems = nicProblems(nic);
    const what = `Cannot hot-plug NIC "${nic.tap}" into vm "${t.config.name}"`;
    if (problems.length) throw new ApiError('invalid', `${what}: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, { details: problems });
    const q = await this.qmp(t);
    const have = t.nics ?? (await this.learnNics(t));
    if (have.some((n) => n.tap === nic.tap)) throw new ApiError('conflict', `${what}: it is plugged in already`);
    const port = isPcie(this.machine) ? freePort(t.ports ?? [], have) : undefined;
    if (isPcie(this.machine) && !port) throw new ApiError('conflict', `${what}: no free hot-plug slot; it is plugged in at the next start`);
    try {
      await plugNic(q, nic, port);
    } catch (e) {
      throw new ApiError('conflict', `${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    have.push({ ...nic, ...(port ? { port } : {}) });
    // A reboot (a fresh start with the stored config) keeps the NIC.
    t.config = { ...t.config, nics: [...(t.config.nics ?? []).filter((n) => n.tap !== nic.tap), nic] };
    await writeFile(t.paths.config, JSON.stringify(t.config, null, 2), { mode: 0o600 });
    return this.info(t);
  }

  async detachNic(id: string, nic: NicConfig, opts: { timeoutMs?: number } = {}): Promise<VmInfo> {
    const t = await this.running(id, 'unplug a NIC from');
    const what = `Cannot unplug NIC "${nic.tap}" from vm "${t.config.name}"`;
    const have = t.nics ?? (await this.learnNics(t));
    const plugged = have.find((n) => n.tap === nic.tap && n.mac.toLowerCase() === nic.mac.toLowerCase());
    if (!plugged) throw new ApiError('not_found', `${what}: no NIC with MAC "${nic.mac}" is plugged in there`);
    if (isPcie(this.machine) && !plugged.port) throw new ApiError('conflict', `${what}: it sits on the root bus, which cannot hot-unplug; it goes at the next start`);
    // Whatever the guest does now, the next start leaves the NIC out.
    t.config = { ...t.config, nics: (t.config.nics ?? []).filter((n) => n.tap !== nic.tap) };
    await writeFile(t.paths.config, JSON.stringify(t.config, null, 2), { mode: 0o600 });
    const timeoutMs = opts.timeoutMs ?? 20_000;
    const q = await this.qmp(t);
    t.detaching.add(nic.tap);
    let released: boolean;
    try {
      released = await unplugNic(q, nic, timeoutMs);
    } catch (e) {
      throw new ApiError('conflict', `${what}: ${e instanceof Error ? e.message : String(e)}; it goes at the next start`, { cause: e });
    } finally {
      t.detaching.delete(nic.tap);
    }
    if (!released) throw new ApiError('conflict', `${what}: the guest did not release it within ${timeoutMs} ms (no hot-plug support?); it needs a restart`);
    t.nics = (t.nics ?? []).filter((n) => n !== plugged);
    return this.info(t);
  }

  async list(): Promise<VmInfo[]> {
    const ids = await readdir(this.opts.runDir).catch(() => [] as string[]);
    const out: VmInfo[] = [];
    for (const id of ids.sort()) {
      if (!this.starting.has(id) && existsSync(vmPaths(this.opts.runDir, id).config)) out.push(await this.recover(id));
    }
    return out;
  }

  async consoleLog(id: string): Promise<string> {
    const t = await this.get(id);
    await rotateConsoleLog(t.paths.consoleLog, this.consoleMax);
    return readConsoleLog(t.paths.consoleLog, 2 * this.consoleMax);
  }

  async attachConsole(id: string): Promise<Duplex> {
    const t = await this.running(id, 'attach to the console of');
    if (t.console && !t.console.destroyed) throw new ApiError('conflict', `Cannot attach to the console of vm "${t.config.name}": it is already attached`);
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(t.paths.consoleSocket);
      s.once('connect', () => resolve(s));
      s.once('error', (e) => reject(new ApiError('unavailable', `Cannot attach to the console of vm "${t.config.name}": ${e.message}`)));
    });
    t.console = sock;
    sock.once('close', () => t.console === sock && (t.console = undefined));
    return sock;
  }

  private get machine(): string {
    return this.opts.machine ?? 'q35';
  }

  /** A re-adopted VM's NICs and root ports, from QEMU itself. */
  private async learnNics(t: Tracked): Promise<PluggedNic[]> {
    const found = await queryNics(await this.qmp(t), { pcie: isPcie(this.machine), configured: t.config.nics ?? [] });
    t.ports = found.ports;
    return (t.nics = found.nics);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const t of this.vms.values()) t.qmp?.close();
    this.vms.clear();
  }

  private async get(id: string): Promise<Tracked> {
    const t = this.vms.get(id);
    if (t) return t;
    await this.recover(id);
    return this.vms.get(id)!;
  }

  private async running(id: string, action: string): Promise<Tracked> {
    const t = await this.get(id);
    if (!(await this.alive(t))) throw new ApiError('conflict', `Cannot ${action} vm "${t.config.name}": vm is not running`);
    return t;
  }

  /** A VM's state from its files: config.json and the pid QEMU wrote. */
  private async load(id: string): Promise<Tracked> {
    const paths = vmPaths(this.opts.runDir, id);
    const text = /^[A-Za-z0-9_-]{1,64}$/.test(id) ? await readFile(paths.config, 'utf8').catch(() => undefined) : undefined;
    if (text === undefined) throw new ApiError('not_found', `Cannot find vm "${id}" on this host`);
    const t: Tracked = { config: JSON.parse(text) as VmConfig, paths, stopping: false, detaching: new Set() };
    t.pid = await readPid(paths.pidFile);
    t.startedAt = await pidFileTime(paths.pidFile);
    return t;
  }

  private alive(t: Tracked): Promise<boolean> {
    return isVmProcess(t.pid, t.paths.pidFile);
  }

  private async info(t: Tracked): Promise<VmInfo> {
    const base = { id: t.config.id, name: t.config.name };
    if (await this.alive(t)) {
      const nics = t.nics?.map((n) => ({ tap: n.tap, mac: n.mac }));
      return { ...base, state: 'running', pid: t.pid!, ...(t.startedAt ? { startedAt: t.startedAt } : {}), ...(nics ? { nics } : {}) };
    }
    let exit = await readFile(t.paths.exitFile, 'utf8').then((s) => JSON.parse(s) as VmExit, () => undefined);
    if (!exit && !t.stopping) {
      const stderr = await qemuStderr(t.paths.qemuLog);
      exit = { kind: 'crash', message: `QEMU ${describeExit(t.childExit)}${stderr ? `: ${stderr}` : ''}`, at: Date.now() };
      await this.writeExit(t, exit);
    }
    return { ...base, state: exit?.kind === 'crash' ? 'crashed' : 'stopped', ...(exit ? { exit } : {}) };
  }

  private async writeExit(t: Tracked, exit: VmExit): Promise<void> {
    await writeFile(t.paths.exitFile, JSON.stringify(exit), { mode: 0o600 }).catch(() => undefined);
  }

  private async createDisks(c: VmConfig, p: VmPaths): Promise<void> {
    const GiB = 1024n ** 3n;
    const jobs: [string, string, bigint, Qcow2Backing?][] = [];
    if (!existsSync(p.bootDisk)) jobs.push([`its boot disk from "${c.image.path}"`, p.bootDisk, BigInt(c.diskGiB) * GiB, c.image]);
    for (const d of c.disks ?? []) {
      if (!existsSync(p.disk(d.name))) jobs.push([`disk "${d.name}"`, p.disk(d.name), BigInt(d.sizeGiB) * GiB]);
    }
    for (const [what, path, bytes, backing] of jobs) {
      try {
        await createQcow2(path, bytes, backing);
      } catch (e) {
        throw new ApiError('invalid', `Cannot start vm "${c.name}": cannot create ${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
    }
  }

  private async spawn(t: Tracked, rev: Reverter): Promise<void> {
    const argv = qemuArgv(t.config, t.paths, { ...(this.runAs ? { runAs: this.runAs } : {}), ...(this.opts.machine ? { machine: this.opts.machine } : {}) });
    const child: ChildProcess = spawnDetached(this.opts.qemuBinary ?? 'qemu-system-x86_64', argv, t.paths.qemuLog);
    let exited = false;
    t.childExit = undefined;
    child.once('exit', (code, signal) => {
      exited = true;
      t.childExit = { code, signal };
    });
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    rev.add(() => {
      if (!exited) child.kill('SIGKILL');
    });
    t.pid = child.pid;
    t.startedAt = Date.now();
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 30_000);
    for (;;) {
      if (exited || child.pid === undefined) {
        const err = child.pid === undefined ? await spawnError : undefined;
        const stderr = err ? err.message : await qemuStderr(t.paths.qemuLog);
        throw new ApiError('invalid', `Cannot start vm "${t.config.name}": ${stderr || `QEMU ${describeExit(t.childExit)}`}`);
      }
      if (Date.now() > deadline) throw new ApiError('unavailable', `Cannot start vm "${t.config.name}": QEMU did not answer on QMP within ${this.opts.startTimeoutMs ?? 30_000} ms`);
      const q = await QmpClient.connect(t.paths.qmpSocket, { timeoutMs: 2000 }).catch(() => undefined);
      if (q) {
        this.monitor(t, q);
        await q.execute('query-status');
        return;
      }
      await delay(20);
    }
  }

  /** The VM's QMP connection, opened and watched on first use. */
  private async qmp(t: Tracked): Promise<QmpClient> {
    if (t.qmp) return t.qmp;
    const q = await QmpClient.connect(t.paths.qmpSocket, { timeoutMs: 5000 });
    this.monitor(t, q);
    return q;
  }

  private monitor(t: Tracked, q: QmpClient): void {
    t.qmp = q;
    q.on('event', (ev: { event: string; data?: Record<string, unknown> }) => {
      if (ev.event === 'SHUTDOWN' && ev.data?.guest === true) void this.finishPoweroff(t);
      const device = ev.event === 'DEVICE_DELETED' ? ev.data?.device : undefined;
      // A guest that releases a NIC after detachNic stopped waiting: the NIC and its backend go now.
      if (typeof device === 'string' && device.startsWith('nic-') && !t.detaching.has(device.slice(4))) {
        t.nics = t.nics?.filter((n) => n.tap !== device.slice(4));
        void q.execute('netdev_del', { id: nicIds(device.slice(4)).netdev }).catch(() => undefined);
      }
    });
    q.on('close', () => t.qmp === q && (t.qmp = undefined));
  }

  /** After a guest poweroff QEMU waits paused (-no-shutdown): record why, then let it exit. */
  private async finishPoweroff(t: Tracked): Promise<void> {
    if (!t.stopping) await this.writeExit(t, { kind: 'poweroff', message: 'the guest powered off', at: Date.now() });
    await t.qmp?.execute('quit').catch(() => undefined);
    await waitGone(t.pid, t.paths.pidFile, 5000);
  }

  /** Hard stop: QMP quit, then SIGKILL. */
  private async kill(t: Tracked): Promise<void> {
    const quit = await this.qmp(t).then((q) => q.execute('quit', undefined, { timeoutMs: 2000 })).then(() => true, () => false);
    if (quit && (await waitGone(t.pid, t.paths.pidFile, 5000))) return;
    try {
      process.kill(t.pid!, 'SIGKILL');
    } catch {
      return;
    }
    if (!(await waitGone(t.pid, t.paths.pidFile, 5000))) throw new Error(`Cannot stop vm "${t.config.name}": QEMU pid ${t.pid} survived SIGKILL`);
  }

  private async rotateAll(): Promise<void> {
    for (const t of this.vms.values()) await rotateConsoleLog(t.paths.consoleLog, this.consoleMax).catch(() => undefined);
  }
}
