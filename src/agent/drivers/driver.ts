import type { Duplex } from 'node:stream';
import type { NicConfig, VmConfig } from './vm-config.ts';

export type { NicConfig, VmConfig } from './vm-config.ts';

/**
 * What a driver reports about one VM:
 *
 *   start ──► running ──stop/guest poweroff──► stopped ──start──► running
 *                │
 *                └──QEMU died on its own (signal, crash)──► crashed ──start──► running
 */
export type VmState = 'running' | 'stopped' | 'crashed';

/**
 * Why a VM is no longer running: the guest powered off on its own, it was
 * stopped on request (`stop` and the guest obeyed, or `stop` after the
 * guest's own poweroff), the driver forced it, or it died. Only a guest's own
 * poweroff keeps a VM down against its spec.
 */
export interface VmExit {
  kind: 'poweroff' | 'stopped' | 'forced' | 'crash';
  message: string;
  /** Milliseconds since the epoch. */
  at: number;
}

/** The driver's view of one VM. */
export interface VmInfo {
  id: string;
  name: string;
  state: VmState;
  /** The hypervisor process while running. */
  pid?: number;
  /** When the current process started (ms since the epoch), while running. */
  startedAt?: number;
  /** Set once the VM has stopped or crashed. */
  exit?: VmExit;
  /** While running: the NICs plugged into the guest now (cold-booted and hot-plugged, including one the guest has not released yet). */
  nics?: NicConfig[];
}

export interface StopOptions {
  /** How long the guest may take to power off after the ACPI request before a hard stop (default 30 s). */
  timeoutMs?: number;
}

/**
 * Runs VMs on one host. Every method is keyed by `VmConfig.id`; methods other
 * than `start`, `list` and `destroy` fail with `not_found` for unknown ids.
 * VMs outlive the driver: a new instance re-adopts them (`recover`, `list`).
 * Calls for one VM must not overlap (the agent's executor runs one step per VM
 * at a time); calls for different VMs may.
 */
export interface Driver {
  /** Creates the VM's disks when missing (kept across stop/start) and boots it. */
  start(config: VmConfig): Promise<VmInfo>;
  inspect(id: string): Promise<VmInfo>;
  /** ACPI powerdown, then a hard stop after `timeoutMs`; a VM that is not running is left as it is. */
  stop(id: string, opts?: StopOptions): Promise<VmInfo>;
  /** A graceful stop then a fresh start with the stored config (a new process). */
  reboot(id: string, opts?: StopOptions): Promise<VmInfo>;
  /** A hardware reset of the running guest; the process stays. */
  reset(id: string): Promise<VmInfo>;
  /**
   * Hot-plugs a NIC into the running VM; its tap must exist. It stays across
   * reboots. `conflict` when the VM is not running, the tap is plugged in
   * already, or no hot-plug slot is free (then it needs a restart).
   */
  attachNic(id: string, nic: NicConfig): Promise<VmInfo>;
  /**
   * Asks the guest to release a NIC and waits up to `timeoutMs` (default 20 s);
   * the tap is free afterwards. A guest that does not release it in time (no
   * hot-plug support) gets `conflict` "needs a restart": the NIC is left out of
   * the next start and goes when the guest finally lets go. `not_found` for a
   * NIC that is not plugged in.
   */
  detachNic(id: string, nic: NicConfig, opts?: { timeoutMs?: number }): Promise<VmInfo>;
  /** Hard stop, then removes every file of the VM; unknown ids are fine. */
  destroy(id: string): Promise<void>;
  /** Re-adopts a VM left by an earlier driver instance, without restarting it. */
  recover(id: string): Promise<VmInfo>;
  /** Every VM this host knows of, re-adopting running ones. */
  list(): Promise<VmInfo[]>;
  /** The recent serial console output (bounded). */
  consoleLog(id: string): Promise<string>;
  /** An interactive serial console: bytes written go to the guest, guest output comes out. One at a time. */
  attachConsole(id: string): Promise<Duplex>;
  /** Releases connections and timers; VMs keep running. */
  close(): Promise<void>;
}
