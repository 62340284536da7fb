import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashToken } from '../auth/static-token.ts';
import { staticTokensFile } from './bootstrap.ts';

const crowd = resolve(dirname(fileURLToPath(import.meta.url)), '../crowd.ts');
const token = 'crowd_durability-test-token';
const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

/** Starts `crowd server` as its own process; resolves with its URL once it prints it. */
async function startServer(dataDir: string, children: ChildProcess[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', crowd, 'server', '--store', `sqlite:${join(dataDir, 'crowd.db')}`, '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 30 s: ${out} ${err}`)), 30_000);
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /serving (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${out} ${err}`));
    });
  });
  return { child, url };
}

test('a write acknowledged to the client survives kill -9 of the server', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-durability-'));
  const children: ChildProcess[] = [];
  try {
    writeFileSync(join(dir, staticTokensFile), JSON.stringify({ tokens: [{ name: 'admin', sha256: hashToken(token) }] }), { mode: 0o600 });

    const first = await startServer(dir, children);
    const names = Array.from({ length: 20 }, (_, i) => `img-${i}`);
    const answers = await Promise.all(
      names.map((name) => fetch(`${first.url}/v1/images`, { method: 'POST', headers: auth, body: JSON.stringify({ name, labels: { batch: 'one' }, spec: { arch: 'x86_64' } }) })),
    );
    assert.deepEqual(answers.map((a) => a.status), names.map(() => 201));
    const revisions = await Promise.all(answers.map(async (a) => ((await a.json()) as { revision: number }).revision));
    const exited = once(first.child, 'exit');
    first.child.kill('SIGKILL');
    const [, signal] = (await exited) as [number | null, string | null];
    assert.equal(signal, 'SIGKILL');

    const second = await startServer(dir, children);
    const list = await fetch(`${second.url}/v1/images?selector=batch%3Done`, { headers: auth });
    assert.equal(list.status, 200);
    const body = (await list.json()) as { items: { name: string; revision: number }[]; revision: number };
    assert.deepEqual(body.items.map((i) => i.name).sort(), [...names].sort());
    assert.ok(body.revision >= Math.max(...revisions));
    second.child.kill('SIGTERM');
    const [code] = (await once(second.child, 'exit')) as [number | null];
    assert.equal(code, 0, 'a SIGTERM shuts the server down cleanly');
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
