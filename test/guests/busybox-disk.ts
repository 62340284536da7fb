import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExecRunner, type Runner } from '../../src/base/runner.ts';

const here = dirname(fileURLToPath(import.meta.url));
const script = join(here, 'build-busybox-disk.sh');
/** Git-ignored cache shared by every test run on this machine. */
export const guestCache = resolve(here, '../../.cache/guests');

/** The markers the guest prints on its serial console. */
export const guestMarkers = { up: 'CROWD-GUEST-UP', ready: 'CROWD-GUEST-READY', poweroff: 'CROWD-GUEST-POWEROFF' } as const;

/** The newest Debian cloud kernel, which the guest is built from. */
export function cloudKernelVersion(): string | undefined {
  const versions = existsSync('/lib/modules') ? readdirSync('/lib/modules').filter((v) => v.endsWith('-cloud-amd64')) : [];
  return versions.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1);
}

/**
 * The busybox test guest as a bootable qcow2 disk (syslinux on FAT, like a
 * cloud image), built once per build-script and kernel version and cached.
 */
export async function ensureBusyboxDisk(runner: Runner = new ExecRunner()): Promise<string> {
  const kver = cloudKernelVersion();
  if (!kver) throw new Error('Cannot build the busybox guest: no *-cloud-amd64 kernel in /lib/modules (apt-get install linux-image-cloud-amd64)');
  const key = createHash('sha256').update(readFileSync(script)).update(kver).digest('hex').slice(0, 16);
  const dir = join(guestCache, `busybox-${key}`);
  const disk = join(dir, 'disk.qcow2');
  if (existsSync(disk)) return disk;
  await mkdir(guestCache, { recursive: true });
  const tmp = await mkdtemp(join(guestCache, '.busybox-'));
  try {
    await runner.run({ argv: ['bash', script, tmp, kver], timeoutMs: 120_000 });
    // Another test process may have finished first; its copy is as good as ours.
    await rename(tmp, dir).catch(() => undefined);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  if (!existsSync(disk)) throw new Error(`Cannot build the busybox guest: "${disk}" is missing after the build`);
  return disk;
}
