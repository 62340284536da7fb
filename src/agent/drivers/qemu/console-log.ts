import { copyFile, open, stat, truncate } from 'node:fs/promises';

/**
 * The serial console log is written by QEMU itself (chardev `logfile=`, opened
 * O_APPEND), so output is kept while nobody is attached and while the agent is
 * down. The driver bounds it by copy-and-truncate into `<log>.1`: at most
 * 2 × maxBytes on disk between checks; bytes written during the copy may be lost.
 */
export async function rotateConsoleLog(path: string, maxBytes: number): Promise<boolean> {
  const size = await stat(path).then((s) => s.size, () => 0);
  if (size <= maxBytes) return false;
  await copyFile(path, `${path}.1`);
  await truncate(path, 0);
  return true;
}

async function tail(path: string, maxBytes: number): Promise<Buffer> {
  const fh = await open(path, 'r').catch(() => undefined);
  if (!fh) return Buffer.alloc(0);
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, maxBytes);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, size - len);
    return buf;
  } finally {
    await fh.close();
  }
}

/** The last `maxBytes` of the console: the rotated file, then the current one. */
export async function readConsoleLog(path: string, maxBytes: number): Promise<string> {
  const current = await tail(path, maxBytes);
  const older = current.length < maxBytes ? await tail(`${path}.1`, maxBytes - current.length) : Buffer.alloc(0);
  return Buffer.concat([older, current]).toString('utf8');
}
