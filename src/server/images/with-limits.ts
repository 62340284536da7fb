/** Kernel resource limits for one untrusted-input command (see the qemu-img security notes). */
export interface ProcessLimits {
  /** Address space (virtual memory) cap, bytes: `prlimit --as`. */
  addressSpaceBytes?: number;
  /** CPU time cap, seconds: `prlimit --cpu`. */
  cpuSeconds?: number;
  /** Largest file the command may write, bytes: `prlimit --fsize` (beyond it the write fails with SIGXFSZ). */
  fileSizeBytes?: number;
}

/** Prefixes argv with `prlimit` so the limits apply to the command itself (prlimit execs it, same pid). */
export function withLimits(argv: string[], limits: ProcessLimits): string[] {
  const flags: string[] = [];
  if (limits.addressSpaceBytes !== undefined) flags.push(`--as=${Math.floor(limits.addressSpaceBytes)}`);
  if (limits.cpuSeconds !== undefined) flags.push(`--cpu=${Math.ceil(limits.cpuSeconds)}`);
  if (limits.fileSizeBytes !== undefined) flags.push(`--fsize=${Math.floor(limits.fileSizeBytes)}`);
  if (flags.length === 0) return argv;
  return ['prlimit', ...flags, '--', ...argv];
}
