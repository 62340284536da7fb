/**
 * Image benchmark (DESIGN.md §10): upload and host-pull throughput of a large
 * qcow2 image against `cp` of the same file on the same disk, measured in
 * alternating rounds so a shared machine's load hits all of them alike, plus
 * the ceilings that bound an HTTP path here (sha256, loopback HTTP, cp with
 * fsync) and the server's peak RSS during the uploads. The server runs as
 * its own process (`crowd server`), so its VmHWM is the server's alone.
 * Usage: node --import tsx bench/images.bench.ts [size-MiB, default 2048] [rounds, default 3]
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { request as httpRequest, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { pullImage, contentOpener } from '../src/agent/image-pull.ts';
import { mib } from './stats.ts';

const sizeMiB = Number(process.argv[2] ?? 2048);
const rounds = Number(process.argv[3] ?? 3);
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

/** Seconds `fn` takes, after a `sync` so no dirty pages of an earlier step are written back during it. */
async function timed(fn: () => unknown): Promise<number> {
  execFileSync('sync');
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

/** Sends a file as a request body with plain `node:http` (4 MiB reads); resolves with the answer. */
function sendFile(url: string, method: string, headers: Record<string, string>, file: string): Promise<{ status: number; text: string }> {
  return new Promise((ok, fail) => {
    const req = httpRequest(url, { method, headers: { ...headers, 'content-length': String(statSync(file).size) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, text }));
      res.on('error', fail);
    });
    req.on('error', fail);
    createReadStream(file, { highWaterMark: 4 * MiB }).on('error', fail).pipe(req);
  });
}

/** What bounds any HTTP path on this machine: sha256 on one core, and bytes through loopback `node:http` into `fetch` and out of `http.request`. */
async function ceilings(bytes: number): Promise<{ sha: number; fetchIn: number; httpOut: number }> {
  const block = randomBytes(4 * MiB);
  const count = Math.ceil(bytes / block.length);
  const h = createHash('sha256');
  const sha = await timed(() => {
    for (let i = 0; i < count; i++) h.update(block);
  });
  const server = createServer((req, res) => {
    if (req.method === 'POST') {
      req.resume().on('end', () => res.end());
      return;
    }
    res.writeHead(200, { 'content-length': String(count * block.length) });
    let sent = 0;
    const pump = (): void => {
      while (sent < count) {
        sent++;
        if (!res.write(block)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  try {
    const fetchIn = await timed(async () => {
      const reader = (await fetch(url)).body!.getReader();
      while (!(await reader.read()).done);
    });
    const httpOut = await timed(
      () =>
        new Promise<void>((ok, fail) => {
          const req = httpRequest(url, { method: 'POST', headers: { 'content-length': String(count * block.length) } }, (res) => res.resume().on('end', ok));
          req.on('error', fail);
          let sent = 0;
          const pump = (): void => {
            while (sent < count) {
              sent++;
              if (!req.write(block)) return void req.once('drain', pump);
            }
            req.end();
          };
          pump();
        }),
    );
    const rate = (s: number) => (count * block.length) / MiB / s;
    return { sha: rate(sha), fetchIn: rate(fetchIn), httpOut: rate(httpOut) };
  } finally {
    server.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  process.stdout.write(`making a ${sizeMiB} MiB qcow2 image…\n`);
  const image = makeImage();
  const bytes = statSync(image).size;
  const rate = (s: number) => bytes / MiB / s;
  const server = await startServer();
  const rows: { cp: number; cpSync: number; upload: number; finish: number; pull: number; ceil: Awaited<ReturnType<typeof ceilings>> }[] = [];
  let rssBefore = 0;
  let rssPeak = 0;
  try {
    const auth = { authorization: `Bearer ${server.token}` };
    const json = { ...auth, 'content-type': 'application/json' };
    const open = contentOpener(() => ({ url: server.url, authorization: auth.authorization }));
    rssBefore = peakRss(server.pid);
    for (let round = 0; round < rounds; round++) {
      const copy = join(dir, 'copy.qcow2');
      const cp = await timed(() => execFileSync('cp', [image, copy]));
      rmSync(copy);
      const cpSync = await timed(() => execFileSync('dd', [`if=${image}`, `of=${copy}`, 'bs=4M', 'conv=fsync', 'status=none']));
      rmSync(copy);
      const name = `big-${round}`;
      await fetch(`${server.url}/v1/images`, { method: 'POST', headers: json, body: JSON.stringify({ name, spec: {} }) });
      const session = (await (await fetch(`${server.url}/v1/images/${name}/uploads`, { method: 'POST', headers: json, body: JSON.stringify({ size: bytes }) })).json()) as { id: string };
      const upload = await timed(async () => {
        const res = await sendFile(`${server.url}/v1/images/${name}/uploads/${session.id}`, 'PATCH', { ...auth, 'content-type': 'application/octet-stream', 'upload-offset': '0' }, image);
        if (res.status !== 200) throw new Error(`upload failed: ${res.text}`);
      });
      let sha = '';
      const finish = await timed(async () => {
        const res = await fetch(`${server.url}/v1/images/${name}/uploads/${session.id}/finish`, { method: 'POST', headers: auth });
        if (!res.ok) throw new Error(`finish failed: ${await res.text()}`);
        sha = ((await res.json()) as { status: { sha256: string } }).status.sha256;
      });
      rssPeak = peakRss(server.pid);
      const pulled = join(dir, 'pulled.qcow2');
      const pull = await timed(() => pullImage(open, { name, project: 'default', sha256: sha, path: pulled }));
      rmSync(pulled, { force: true });
      const ceil = await ceilings(bytes);
      rows.push({ cp: rate(cp), cpSync: rate(cpSync), upload: rate(upload), finish: rate(upload + finish), pull: rate(pull), ceil });
      process.stdout.write(`round ${round + 1}: cp ${rate(cp).toFixed(0)}, upload ${rate(upload).toFixed(0)}, pull ${rate(pull).toFixed(0)} MiB/s\n`);
    }
  } finally {
    await server.stop();
  }
  const col = (f: (r: (typeof rows)[number]) => number) => rows.map(f);
  const cpMedian = median(col((r) => r.cp));
  const line = (what: string, xs: number[], ratio = true) =>
    `${what.padEnd(48)} ${xs.map((x) => x.toFixed(0).padStart(5)).join(' ')}   median ${median(xs).toFixed(0).padStart(5)} MiB/s` +
    (ratio ? `  (${(median(xs) / cpMedian).toFixed(2)}× cp; per round ${rows.map((r, i) => (xs[i]! / r.cp).toFixed(2)).join(' ')})` : '');
  process.stdout.write(`image: ${mib(bytes)} qcow2 (${sizeMiB} MiB virtual), ${rounds} rounds; load: ${readFileSync('/proc/loadavg', 'utf8').trim()}\n`);
  process.stdout.write(
    [
      line('cp (same disk, page cache)', col((r) => r.cp), false),
      line('cp with fsync (dd conv=fsync)', col((r) => r.cpSync)),
      line('upload (PATCH: bytes in, sha256, fsync)', col((r) => r.upload)),
      line('upload + finish (checks, convert, store)', col((r) => r.finish)),
      line('host pull (Range-capable, sha256, fsync)', col((r) => r.pull)),
      line('ceiling: sha256, one core', col((r) => r.ceil.sha)),
      line('ceiling: loopback node:http → fetch, no disk', col((r) => r.ceil.fetchIn)),
      line('ceiling: loopback http.request → node:http', col((r) => r.ceil.httpOut)),
      `server peak RSS (VmHWM) before → after uploads     ${mib(rssBefore)} → ${mib(rssPeak)}`,
    ].join('\n') + '\n',
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
