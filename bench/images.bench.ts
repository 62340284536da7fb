/**
 * Image benchmark (DESIGN.md §10): upload and host-pull throughput of a large
 * qcow2 image against `cp` of the same file on the same disk, and the
 * server's peak RSS during the upload. The server runs as its own process
 * (`crowd server`), so its VmHWM is the server's alone.
 * Usage: node --import tsx bench/images.bench.ts [size-MiB, default 2048]
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, createReadStream, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pullImage, contentOpener } from '../src/agent/image-pull.ts';
import { mib } from './stats.ts';

const sizeMiB = Number(process.argv[2] ?? 2048);
const MiB = 1024 * 1024;
// On the project's disk (not a tmpfs), so cp, upload and pull all hit the same disk.
mkdirSync(resolve('.cache'), { recursive: true });
const dir = mkdtempSync(join(resolve('.cache'), 'bench-images-'));

/** A raw disk of incompressible data (a random block, stamped per MiB), converted to qcow2: every cluster allocated. */
function makeImage(): string {
  const raw = join(dir, 'disk.raw');
  const block = randomBytes(16 * MiB);
  const fd = openSync(raw, 'w');
  for (let i = 0; i < sizeMiB; i++) {
    const chunk = block.subarray((i % 16) * MiB, ((i % 16) + 1) * MiB);
    chunk.writeUInt32LE(i, 0);
    writeSync(fd, chunk);
  }
  closeSync(fd);
  const qcow2 = join(dir, 'disk.qcow2');
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
  rmSync(raw);
  return qcow2;
}

function secondsOf(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

async function secondsOfAsync(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** Starts `crowd server` on a free loopback port; resolves with its URL, admin token and pid. */
async function startServer(): Promise<{ url: string; token: string; pid: number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/crowd.ts', 'server', '--data-dir', join(dir, 'server'), '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  await new Promise<void>((ok, fail) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (/Admin token[^\n]*\n\s+\S+\n/.test(out) && /serving (\S+)/.test(out)) ok();
    });
    child.once('exit', (code) => fail(new Error(`crowd server exited with ${code}: ${out}`)));
  });
  const url = /serving (\S+)/.exec(out)![1]!;
  const token = /Admin token[^\n]*\n\s+(\S+)\n/.exec(out)![1]!;
  return {
    url,
    token,
    pid: child.pid!,
    stop: () =>
      new Promise((r) => {
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}

/** The process's peak resident set (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

try {
  process.stdout.write(`making a ${sizeMiB} MiB qcow2 image…\n`);
  const image = makeImage();
  const bytes = statSync(image).size;
  // Each measurement starts with no dirty pages left to write back from the one before.
  execFileSync('sync');
  const cpSeconds = secondsOf(() => execFileSync('cp', [image, join(dir, 'copy.qcow2')]));
  rmSync(join(dir, 'copy.qcow2'));
  const cpRate = bytes / MiB / cpSeconds;

  const server = await startServer();
  try {
    const auth = { authorization: `Bearer ${server.token}` };
    const rssBefore = peakRss(server.pid);
    execFileSync('sync');
    await fetch(`${server.url}/v1/images`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'big', spec: {} }) });
    const session = (await (
      await fetch(`${server.url}/v1/images/big/uploads`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ size: bytes }) })
    ).json()) as { id: string };
    const uploadSeconds = await secondsOfAsync(async () => {
      const res = await fetch(`${server.url}/v1/images/big/uploads/${session.id}`, {
        method: 'PATCH',
        headers: { ...auth, 'content-type': 'application/octet-stream', 'upload-offset': '0' },
        body: Readable.toWeb(createReadStream(image, { highWaterMark: 4 * MiB })) as ReadableStream<Uint8Array>,
        duplex: 'half',
      } as RequestInit);
      if (!res.ok) throw new Error(`upload failed: ${await res.text()}`);
    });
    let sha = '';
    const finishSeconds = await secondsOfAsync(async () => {
      const res = await fetch(`${server.url}/v1/images/big/uploads/${session.id}/finish`, { method: 'POST', headers: auth });
      if (!res.ok) throw new Error(`finish failed: ${await res.text()}`);
      sha = ((await res.json()) as { status: { sha256: string } }).status.sha256;
    });
    const rssPeak = peakRss(server.pid);
    const pulled = join(dir, 'pulled.qcow2');
    execFileSync('sync');
    const open = contentOpener(() => ({ url: server.url, authorization: auth.authorization }));
    const pullSeconds = await secondsOfAsync(() => pullImage(open, { name: 'big', project: 'default', sha256: sha, path: pulled }));
    const pulledBytes = statSync(pulled).size;

    const uploadRate = bytes / MiB / uploadSeconds;
    const pullRate = pulledBytes / MiB / pullSeconds;
    const rows = [
      ['cp (same disk)', `${cpRate.toFixed(0)} MiB/s`, ''],
      ['upload (bytes in, sha256, to disk)', `${uploadRate.toFixed(0)} MiB/s`, `${(uploadRate / cpRate).toFixed(2)}× cp`],
      ['upload + finish (checks, qemu-img convert, store)', `${(bytes / MiB / (uploadSeconds + finishSeconds)).toFixed(0)} MiB/s`, `${uploadSeconds.toFixed(1)} s + ${finishSeconds.toFixed(1)} s`],
      ['host pull (Range-capable, sha256 verified)', `${pullRate.toFixed(0)} MiB/s`, `${(pullRate / cpRate).toFixed(2)}× cp`],
      ['server peak RSS (VmHWM) before → after upload', `${mib(rssBefore)} → ${mib(rssPeak)}`, ''],
    ];
    process.stdout.write(`image: ${mib(bytes)} qcow2 (${sizeMiB} MiB virtual)\n`);
    for (const [what, value, note] of rows) process.stdout.write(`${what!.padEnd(52)} ${value!.padEnd(24)} ${note}\n`);
  } finally {
    await server.stop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
