import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';

/** Small disk images for tests, built with the real tools (qemu-img, xz, genisoimage). */
export interface TestImages {
  dir: string;
  /** 2 MiB: 1 MiB of random bytes then zeros; every disk fixture holds exactly these bytes. */
  raw: string;
  disks: Record<'raw' | 'qcow2' | 'vmdk' | 'vdi' | 'vhdx', string>;
  iso: string;
  compressed: Record<'raw.gz' | 'raw.xz' | 'qcow2.gz' | 'qcow2.xz', string>;
}

/** The size of every disk fixture. */
export const testDiskBytes = 2 * 1024 * 1024;

function sh(argv: string[]): void {
  execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Builds the fixtures in `dir` (a fresh temp dir the caller removes). */
export function makeTestImages(dir: string): TestImages {
  const raw = join(dir, 'disk.raw');
  writeFileSync(raw, Buffer.concat([randomBytes(testDiskBytes / 2), Buffer.alloc(testDiskBytes / 2)]));
  const disks = { raw } as TestImages['disks'];
  for (const f of ['qcow2', 'vmdk', 'vdi', 'vhdx'] as const) {
    disks[f] = join(dir, `disk.${f}`);
    sh(['qemu-img', 'convert', '-f', 'raw', '-O', f, raw, disks[f]]);
  }
  const isoRoot = join(dir, 'iso-root');
  mkdirSync(isoRoot);
  writeFileSync(join(isoRoot, 'hello.txt'), 'install media\n');
  const iso = join(dir, 'media.iso');
  sh(['genisoimage', '-quiet', '-V', 'CROWD', '-o', iso, isoRoot]);
  const compressed = {} as TestImages['compressed'];
  for (const f of ['raw', 'qcow2'] as const) {
    compressed[`${f}.gz`] = join(dir, `disk.${f}.gz`);
    writeFileSync(compressed[`${f}.gz`], gzipSync(readFileSync(disks[f])));
    sh(['xz', '--keep', '-T1', disks[f]]);
    compressed[`${f}.xz`] = `${disks[f]}.xz`;
  }
  return { dir, raw, disks, iso, compressed };
}

/** Every file under `dir`, relative and sorted: what a test asserts is empty after a refusal. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}
