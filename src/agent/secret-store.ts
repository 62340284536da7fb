/** Secret OS parameters of one VM, name → value. */
export type Secrets = Record<string, string>;

/**
 * The secret parameters the server delivered for this host's VMs, held in
 * memory only: the server delivers them once and drops them, and an agent
 * restart loses them (the guest keeps its own copy once it read them).
 */
export class SecretStore {
  private readonly byVm = new Map<string, Secrets>();
  private readonly listeners = new Set<(vmId: string) => void>();

  /** Replaces a VM's secrets and tells the listeners. */
  put(vmId: string, secrets: Secrets): void {
    this.byVm.set(vmId, secrets);
    for (const l of this.listeners) l(vmId);
  }

  get(vmId: string): Secrets | undefined {
    return this.byVm.get(vmId);
  }

  /** Drops a deleted VM's secrets. */
  forget(vmId: string): void {
    this.byVm.delete(vmId);
  }

  /** Calls `listener` with the VM's id whenever its secrets arrive. */
  onPut(listener: (vmId: string) => void): void {
    this.listeners.add(listener);
  }
}

/** Pure: the secrets a `secrets.put` request carries (base64 of a JSON object of strings); undefined when it is not that. */
export function parseSecrets(data: string | undefined): Secrets | undefined {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(data ?? '', 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  return Object.values(v).every((x) => typeof x === 'string') ? (v as Secrets) : undefined;
}
