import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger, type Logger } from '../base/logger.ts';

/** Secret OS parameters of one VM, name → value. */
export type Secrets = Record<string, string>;

/** A VM id fit for a file name: what the server's ids look like, nothing that could climb out of the folder. */
const safeId = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The secret parameters the server delivered for this host's VMs. The server
 * delivers them once and drops them, so with `dir` the agent keeps them on
 * the host to survive its own restart: a root-only folder (0700), one 0600
 * `<vm-id>.json` per VM written atomically (temp file, fsync, rename), loaded
 * at start, deleted with the VM (`forget`). Never in the SQLite cache, never
 * logged. Without `dir` (tests) they live in memory only.
 */
export class SecretStore {
  private readonly byVm = new Map<string, Secrets>();
  private readonly listeners = new Set<(vmId: string) => void>();
  private readonly dir: string | undefined;

  constructor(o: { dir?: string; logger?: Logger } = {}) {
    this.dir = o.dir;
    if (this.dir !== undefined) this.load(this.dir, o.logger ?? silentLogger());
  }

  /** Replaces a VM's secrets (on disk first, so a failed write fails the delivery and the server retries) and tells the listeners. */
  put(vmId: string, secrets: Secrets): void {
    if (this.dir !== undefined) writeSecrets(this.fileOf(vmId), secrets);
    this.byVm.set(vmId, secrets);
    for (const l of this.listeners) l(vmId);
  }

  get(vmId: string): Secrets | undefined {
    return this.byVm.get(vmId);
  }

  /** The VMs holding secrets. */
  ids(): string[] {
    return [...this.byVm.keys()];
  }

  /** Drops a VM's secrets, file included (the VM left this host or is reinstalled). */
  forget(vmId: string): void {
    this.byVm.delete(vmId);
    if (this.dir !== undefined && safeId.test(vmId)) rmSync(join(this.dir, `${vmId}.json`), { force: true });
  }

  /** Calls `listener` with the VM's id whenever its secrets arrive. */
  onPut(listener: (vmId: string) => void): void {
    this.listeners.add(listener);
  }

  private fileOf(vmId: string): string {
    if (!safeId.test(vmId)) throw new Error(`Cannot keep secret parameters of vm "${vmId.slice(0, 80)}": not a VM id`);
    return join(this.dir!, `${vmId}.json`);
  }

  /** Creates the folder root-only (tightening an existing one), drops half-written temp files, reads every VM's file. */
  private load(dir: string, logger: Logger): void {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (name.endsWith('.tmp')) {
        rmSync(path, { force: true });
        continue;
      }
      const id = name.endsWith('.json') ? name.slice(0, -5) : '';
      if (!safeId.test(id)) continue;
      const secrets = secretsFromJson(readFileSync(path, 'utf8'));
      if (!secrets) {
        logger.warn({ vm: id }, 'dropping an unreadable secret parameters file');
        rmSync(path, { force: true });
        continue;
      }
      chmodSync(path, 0o600);
      this.byVm.set(id, secrets);
    }
  }
}

/** Writes the file atomically and owner-only: a crash leaves the old file or the new one, never half of one. */
function writeSecrets(path: string, secrets: Secrets): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(secrets));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** Pure: the secrets a `secrets.put` request carries (base64 of a JSON object of strings); undefined when it is not that. */
export function parseSecrets(data: string | undefined): Secrets | undefined {
  return secretsFromJson(Buffer.from(data ?? '', 'base64').toString('utf8'));
}

/** Pure: a JSON object of strings, or undefined. */
function secretsFromJson(text: string): Secrets | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  return Object.values(v).every((x) => typeof x === 'string') ? (v as Secrets) : undefined;
}
