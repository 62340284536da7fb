/** The QEMU driver's settings from the environment (read only here). */
export interface QemuEnv {
  /** `CROWD_ACCEL=kvm|tcg` skips the KVM probe. */
  accel?: string;
  /** `CROWD_QEMU_USER`: the user QEMU drops to when the agent runs as root. */
  runAs?: string;
}

export function qemuEnv(env: NodeJS.ProcessEnv = process.env): QemuEnv {
  const out: QemuEnv = {};
  if (env.CROWD_ACCEL) out.accel = env.CROWD_ACCEL;
  if (env.CROWD_QEMU_USER) out.runAs = env.CROWD_QEMU_USER;
  return out;
}
