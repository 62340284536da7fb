import { constants } from 'node:fs';
import { access, readdir } from 'node:fs/promises';
import { CommandError, type Runner } from '../../../base/runner.ts';
import type { Accel } from '../vm-config.ts';

export interface AccelResult {
  accel: Accel;
  /** Why this one, for the node's status and the logs. */
  reason: string;
}

export interface DetectAccelOptions {
  runner: Runner;
  /** `CROWD_ACCEL` from the agent's config: "kvm" or "tcg" skip the probe. */
  override?: string;
  /** The kernel the probe boots (default: the newest /boot/vmlinuz-*). */
  kernel?: string;
  /** A working KVM panics the probe kernel in well under a second (default 5 s). */
  timeoutMs?: number;
  qemuBinary?: string;
  kvmDevice?: string;
}

async function newestKernel(): Promise<string | undefined> {
  const names = await readdir('/boot').catch(() => [] as string[]);
  const kernels = names.filter((n) => n.startsWith('vmlinuz-')).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return kernels.length > 0 ? `/boot/${kernels[kernels.length - 1]}` : undefined;
}

/** The probe: boot a kernel with no root under KVM; it must reach its "unable to mount root" panic and exit. */
export function probeArgv(kernel: string): string[] {
  return [
    '-machine', 'pc,accel=kvm', '-cpu', 'host', '-m', '128M', '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny',
    '-kernel', kernel, '-append', 'console=ttyS0 panic=-1 loglevel=1', '-serial', 'stdio',
  ];
}

/**
 * KVM only when a probe guest really runs under it (a present /dev/kvm is not
 * enough: nested virtualization may hang or abort guests), else TCG.
 */
export async function detectAccel(opts: DetectAccelOptions): Promise<AccelResult> {
  if (opts.override === 'kvm' || opts.override === 'tcg') return { accel: opts.override, reason: `set by CROWD_ACCEL=${opts.override}` };
  if (opts.override) throw new Error(`Cannot use CROWD_ACCEL "${opts.override}": expected "kvm" or "tcg"`);
  const device = opts.kvmDevice ?? '/dev/kvm';
  try {
    await access(device, constants.R_OK | constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: `${device} is missing or not accessible` };
  }
  const kernel = opts.kernel ?? (await newestKernel());
  if (!kernel) return { accel: 'tcg', reason: 'no kernel in /boot to probe KVM with' };
  const timeoutMs = opts.timeoutMs ?? 5000;
  try {
    const r = await opts.runner.run({ argv: [opts.qemuBinary ?? 'qemu-system-x86_64', ...probeArgv(kernel)], timeoutMs });
    if (r.stdout.includes('Kernel panic')) return { accel: 'kvm', reason: 'a probe guest booted under KVM' };
    return { accel: 'tcg', reason: 'the KVM probe guest exited without reaching its kernel' };
  } catch (e) {
    const stderr = e instanceof CommandError ? e.result.stderr.trim() : String(e);
    if (/killed by SIGKILL$/.test(stderr)) return { accel: 'tcg', reason: `the KVM probe guest hung for ${timeoutMs} ms` };
    const detail = stderr.split('\n').filter((l) => l.trim() !== '').slice(-2).join(' | ');
    return { accel: 'tcg', reason: `the KVM probe guest failed: ${detail}`.slice(0, 500) };
  }
}
