import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExecRunner, type Runner } from '../../src/base/runner.ts';
import { guestCache } from './busybox-disk.ts';

const script = join(dirname(fileURLToPath(import.meta.url)), 'build-debian-cloud-guest.sh');

/** What cloud-init prints on the guest's console when its last stage is done. */
export const cloudInitFinalMarker = 'CROWD-CLOUD-INIT-FINAL';

/**
 * A real Debian 12 cloud-init guest as a bootable qcow2 disk (syslinux, like a
 * cloud image), built once per build-script version and cached; building
 * needs root and the Debian mirror and takes a minute or two.
 */
export async function ensureDebianCloudDisk(runner: Runner = new ExecRunner()): Promise<string> {
  const key = createHash('sha256').update(readFileSync(script)).digest('hex').slice(0, 16);
  const dir = join(guestCache, `debian-${key}`);
  const disk = join(dir, 'disk.qcow2');
  if (existsSync(disk)) return disk;
  await mkdir(guestCache, { recursive: true });
  const tmp = await mkdtemp(join(guestCache, '.debian-'));
  try {
    await runner.run({ argv: ['bash', script, tmp], timeoutMs: 600_000 });
    // Another test process may have finished first; its copy is as good as ours.
    await rename(tmp, dir).catch(() => undefined);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  if (!existsSync(disk)) throw new Error(`Cannot build the Debian cloud guest: "${disk}" is missing after the build`);
  return disk;
}
