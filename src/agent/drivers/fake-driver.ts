import { Duplex } from 'node:stream';
import { ApiError } from '../../api/errors.ts';
import { systemClock, type Clock } from '../../base/clock.ts';
import type { Driver, StopOptions, VmExit, VmInfo } from './driver.ts';
import { checkVmConfig, nicProblems, type NicConfig, type VmConfig } from './vm-config.ts';

interface FakeVm {
  config: VmConfig;
  pid?: number;
  startedAt?: number;
  booted: boolean;
  exit?: VmExit;
  files: Set<string>;
  log: string;
  console?: Duplex;
  /** Plugged into the running guest. */
  nics: NicConfig[];
}

/**
 * The simulated machine under fake drivers: its "processes" and "files"
 * outlive any one FakeDriver, so a new driver instance can re-adopt them,
 * like QEMU processes outliving the agent.
 */
export class FakeHost {
  readonly vms = new Map<string, FakeVm>();
  private nextPid = 10_000;

  constructor(readonly clock: Clock = systemClock) {}

  allocatePid(): number {
    return this.nextPid++;
  }

  /** Failure injection: the VM's process dies on its own. */
  crash(id: string, message = 'QEMU was killed by SIGKILL'): void {
    const vm = this.vms.get(id);
    if (!vm?.pid) throw new Error(`Cannot crash vm "${id}": it is not running`);
    vm.pid = undefined;
    vm.booted = false;
    vm.exit = { kind: 'crash', message, at: this.clock.now() };
    vm.console?.push(null);
  }

  /** The files a VM still has (empty once destroyed). */
  filesOf(id: string): string[] {
    return [...(this.vms.get(id)?.files ?? [])];
  }
}

export interface FakeDriverOptions {
  host?: FakeHost;
  /** Injected time (default: the host's); with a FakeClock nothing happens until the test advances it. */
  clock?: Clock;
  /** Time from `start` until the process runs. */
  startLatencyMs?: number | ((c: VmConfig) => number);
  /** Time from running until the guest prints its console lines and honours the power button. */
  bootMs?: number;
  /** Time the guest takes to power off after the ACPI request. */
  powerdownMs?: number;
  /** Failure injection: a message makes `start` fail as QEMU would. */
  failStart?: (c: VmConfig) => string | undefined;
  /** Failure injection: guests that never answer the power button. */
  ignoresPowerdown?: (c: VmConfig) => boolean;
  /** Failure injection: guests that never release a NIC on unplug (no hot-plug support). */
  refusesUnplug?: (c: VmConfig) => boolean;
  /** Failure injection: a message makes a hot-plug fail as QEMU would. */
  failHotplug?: (c: VmConfig, nic: NicConfig) => string | undefined;
  /** Printed on the console at every boot. */
  consoleLines?: string[];
  /** The console log keeps this many bytes (default 64 KiB). */
  consoleLogMaxBytes?: number;
}

/** A Driver with no processes, cheap enough for hundreds of simulated agents × 50 VMs in one process. */
export class FakeDriver implements Driver {
  readonly host: FakeHost;
  private readonly clock: Clock;

  constructor(private readonly opts: FakeDriverOptions = {}) {
    this.host = opts.host ?? new FakeHost();
    this.clock = opts.clock ?? this.host.clock;
  }

  async start(config: VmConfig): Promise<VmInfo> {
    checkVmConfig(config);
    const known = this.host.vms.get(config.id);
    if (known?.pid) throw new ApiError('conflict', `Cannot start vm "${config.name}": vm is already running`);
    const latency = typeof this.opts.startLatencyMs === 'function' ? this.opts.startLatencyMs(config) : (this.opts.startLatencyMs ?? 0);
    if (latency > 0) await this.clock.sleep(latency);
    const failure = this.opts.failStart?.(config);
    if (failure) throw new ApiError('invalid', `Cannot start vm "${config.name}": ${failure}`);
    const vm: FakeVm = known ?? { config, booted: false, files: new Set(), log: '', nics: [] };
    vm.config = config;
    vm.nics = [...(config.nics ?? [])];
    for (const f of ['config.json', 'boot.qcow2', 'console.log', ...(config.disks ?? []).map((d) => `disk-${d.name}.qcow2`)]) vm.files.add(f);
    vm.pid = this.host.allocatePid();
    vm.startedAt = this.clock.now();
    vm.exit = undefined;
    this.host.vms.set(config.id, vm);
    this.boot(vm);
    return this.info(vm);
  }

  async inspect(id: string): Promise<VmInfo> {
    return this.info(this.get(id));
  }

  async stop(id: string, opts: StopOptions = {}): Promise<VmInfo> {
    const vm = this.get(id);
    if (!vm.pid) {
      if (vm.exit?.kind === 'poweroff') vm.exit = { ...vm.exit, kind: 'stopped' };
      return this.info(vm);
    }
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const deaf = !vm.booted || (this.opts.ignoresPowerdown?.(vm.config) ?? false);
    const wait = deaf ? timeoutMs : Math.min(this.opts.powerdownMs ?? 0, timeoutMs);
    if (wait > 0) await this.clock.sleep(wait);
    const graceful = !deaf && (this.opts.powerdownMs ?? 0) <= timeoutMs;
    this.end(vm, graceful
      ? { kind: 'stopped', message: 'the guest powered off on request', at: this.clock.now() }
      : { kind: 'forced', message: `the guest did not power off within ${timeoutMs} ms`, at: this.clock.now() });
    return this.info(vm);
  }

  async reboot(id: string, opts: StopOptions = {}): Promise<VmInfo> {
    await this.stop(id, opts);
    return this.start(this.get(id).config);
  }

  async reset(id: string): Promise<VmInfo> {
    const vm = this.get(id);
    if (!vm.pid) throw new ApiError('conflict', `Cannot reset vm "${vm.config.name}": vm is not running`);
    vm.booted = false;
    this.boot(vm);
    return this.info(vm);
  }

  async attachNic(id: string, nic: NicConfig): Promise<VmInfo> {
    const vm = this.get(id);
    const what = `Cannot hot-plug NIC "${nic.tap}" into vm "${vm.config.name}"`;
    if (!vm.pid) throw new ApiError('conflict', `Cannot hot-plug a NIC into vm "${vm.config.name}": vm is not running`);
    const problems = nicProblems(nic);
    if (problems.length) throw new ApiError('invalid', `${what}: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, { details: problems });
    if (vm.nics.some((n) => n.tap === nic.tap)) throw new ApiError('conflict', `${what}: it is plugged in already`);
    const failure = this.opts.failHotplug?.(vm.config, nic);
    if (failure) throw new ApiError('conflict', `${what}: ${failure}`);
    vm.nics.push({ ...nic });
    vm.config = { ...vm.config, nics: [...(vm.config.nics ?? []).filter((n) => n.tap !== nic.tap), nic] };
    return this.info(vm);
  }

  async detachNic(id: string, nic: NicConfig, opts: { timeoutMs?: number } = {}): Promise<VmInfo> {
    const vm = this.get(id);
    const what = `Cannot unplug NIC "${nic.tap}" from vm "${vm.config.name}"`;
    if (!vm.pid) throw new ApiError('conflict', `Cannot unplug a NIC from vm "${vm.config.name}": vm is not running`);
    const plugged = vm.nics.find((n) => n.tap === nic.tap && n.mac.toLowerCase() === nic.mac.toLowerCase());
    if (!plugged) throw new ApiError('not_found', `${what}: no NIC with MAC "${nic.mac}" is plugged in there`);
    vm.config = { ...vm.config, nics: (vm.config.nics ?? []).filter((n) => n.tap !== nic.tap) };
    const timeoutMs = opts.timeoutMs ?? 20_000;
    if (!vm.booted || (this.opts.refusesUnplug?.(vm.config) ?? false)) {
      await this.clock.sleep(timeoutMs);
      throw new ApiError('conflict', `${what}: the guest did not release it within ${timeoutMs} ms (no hot-plug support?); it needs a restart`);
    }
    vm.nics = vm.nics.filter((n) => n !== plugged);
    return this.info(vm);
  }

  async destroy(id: string): Promise<void> {
    const vm = this.host.vms.get(id);
    if (!vm) return;
    if (vm.pid) this.end(vm, { kind: 'forced', message: 'the vm was destroyed', at: this.clock.now() });
    vm.files.clear();
    this.host.vms.delete(id);
  }

  async recover(id: string): Promise<VmInfo> {
    return this.info(this.get(id));
  }

  async list(): Promise<VmInfo[]> {
    return [...this.host.vms.keys()].sort().map((id) => this.info(this.get(id)));
  }

  async consoleLog(id: string): Promise<string> {
    return this.get(id).log;
  }

  async attachConsole(id: string): Promise<Duplex> {
    const vm = this.get(id);
    if (!vm.pid) throw new ApiError('conflict', `Cannot attach to the console of vm "${vm.config.name}": vm is not running`);
    if (vm.console && !vm.console.destroyed) throw new ApiError('conflict', `Cannot attach to the console of vm "${vm.config.name}": it is already attached`);
    // A tty in echo mode: what is typed comes back, and the guest's output is pushed as it appears.
    const stream: Duplex = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, done) {
        stream.push(chunk.toString('utf8').replace(/\n/g, '\r\n'));
        done();
      },
    });
    vm.console = stream;
    stream.once('close', () => vm.console === stream && (vm.console = undefined));
    return stream;
  }

  async close(): Promise<void> {}

  private get(id: string): FakeVm {
    const vm = this.host.vms.get(id);
    if (!vm) throw new ApiError('not_found', `Cannot find vm "${id}" on this host`);
    return vm;
  }

  private boot(vm: FakeVm): void {
    const pid = vm.pid;
    const print = () => {
      if (vm.pid !== pid || vm.booted) return;
      vm.booted = true;
      const text = (this.opts.consoleLines ?? ['CROWD-GUEST-UP', 'CROWD-GUEST-READY']).map((l) => `${l}\r\n`).join('');
      const max = this.opts.consoleLogMaxBytes ?? 64 * 1024;
      vm.log = (vm.log + text).slice(-max);
      vm.console?.push(text);
    };
    const bootMs = this.opts.bootMs ?? 0;
    if (bootMs <= 0) print();
    else void this.clock.sleep(bootMs).then(print);
  }

  private end(vm: FakeVm, exit: VmExit): void {
    vm.pid = undefined;
    vm.booted = false;
    vm.exit = exit;
    vm.console?.push(null);
  }

  private info(vm: FakeVm): VmInfo {
    const base = { id: vm.config.id, name: vm.config.name };
    if (vm.pid) return { ...base, state: 'running', pid: vm.pid, startedAt: vm.startedAt!, nics: vm.nics.map((n) => ({ ...n })) };
    return { ...base, state: vm.exit?.kind === 'crash' ? 'crashed' : 'stopped', ...(vm.exit ? { exit: vm.exit } : {}) };
  }
}
