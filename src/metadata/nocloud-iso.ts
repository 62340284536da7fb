import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runner } from '../base/runner.ts';
import type { GuestInfo } from './guest-info.ts';
import { renderNocloudSeed } from './nocloud.ts';

/**
 * Writes a guest's NoCloud seed ISO (volume label `cidata`, Joliet + Rock
 * Ridge) to `isoPath` with genisoimage. Attach it as a virtio disk: the cloud
 * kernel has no built-in CD-ROM driver. The files pass through a private
 * temp dir (mode 0700) that is always removed.
 */
export async function buildNocloudIso(runner: Runner, guest: GuestInfo, isoPath: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'crowd-cidata-'));
  try {
    const seed = renderNocloudSeed(guest);
    const names = ['user-data', 'meta-data', 'network-config'] as const;
    for (const name of names) await writeFile(join(dir, name), seed[name], { mode: 0o600 });
    await runner.run({
      argv: ['genisoimage', '-quiet', '-output', isoPath, '-V', 'cidata', '-J', '-r', ...names.map((n) => join(dir, n))],
      timeoutMs: 30_000,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
