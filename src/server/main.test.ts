import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { get } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parse } from 'yaml';
import { hashToken } from '../auth/static-token.ts';
import { ExecRunner, FakeRunner } from '../base/runner.ts';
import { missingTools } from '../base/require-tool.ts';
import { upMain, serverMain, type MainIo } from './main.ts';
import { certFingerprint, ensureSelfSignedCert } from './tls.ts';

/** Runs a main in-process until `stop`; resolves `url` once it listens. */
function start(main: typeof upMain, argv: string[], env: Record<string, string>, runner = new ExecRunner()) {
  const ctl = new AbortController();
  let out = '';
  let listening!: (url: string) => void;
  const url = new Promise<string>((r) => (listening = r));
  const io: MainIo = {
    env,
    stdout: { write: (s: string) => (out += s) },
    stderr: new PassThrough().resume(),
    signal: ctl.signal,
    runner,
    onListening: listening,
  };
  const done = main(argv, io);
  const ready = Promise.race([url, done.then(() => Promise.reject(new Error(`exited before listening: ${out}`)))]);
  ready.catch(() => {}); // a test that expects failure awaits `done` instead
  return {
    url: ready,
    done,
    output: () => out,
    stop: async () => {
      ctl.abort();
      await done;
    },
  };
}

function tempHome(): { dir: string; env: Record<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-main-'));
  return { dir, env: { HOME: dir, XDG_DATA_HOME: join(dir, 'data'), CROWD_CONFIG: join(dir, 'config.yaml') } };
}

test('crowd up creates and prints an admin token once, stores only its hash and writes the CLI config', async () => {
  const { dir, env } = tempHome();
  try {
    const first = start(upMain, ['--listen', '127.0.0.1:0'], env);
    const url = await first.url;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const config = parse(readFileSync(env.CROWD_CONFIG!, 'utf8')) as { server: string; token: string };
    assert.equal(config.server, url);
    assert.match(config.token, /^crowd_[A-Za-z0-9_-]{43}$/);
    assert.equal(statSync(env.CROWD_CONFIG!).mode & 0o777, 0o600);
    assert.ok(first.output().includes(config.token));

    const tokensFile = join(env.XDG_DATA_HOME!, 'crowd', 'static-tokens.json');
    assert.equal(statSync(tokensFile).mode & 0o777, 0o600);
    const stored = readFileSync(tokensFile, 'utf8');
    assert.ok(!stored.includes(config.token));
    assert.ok(stored.includes(hashToken(config.token)));

    const auth = { authorization: `Bearer ${config.token}` };
    const projects = await fetch(`${url}/v1/projects`, { headers: auth });
    assert.equal(projects.status, 200);
    assert.deepEqual(((await projects.json()) as { items: { name: string }[] }).items.map((p) => p.name), ['default']);
    const created = await fetch(`${url}/v1/images`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'debian', spec: { arch: 'x86_64' } }) });
    assert.equal(created.status, 201);
    await first.stop();

    const second = start(upMain, ['--listen', '127.0.0.1:0'], env);
    const url2 = await second.url;
    assert.ok(!second.output().includes('Admin token'));
    assert.equal((parse(readFileSync(env.CROWD_CONFIG!, 'utf8')) as { server: string }).server, url);
    const image = await fetch(`${url2}/v1/images/debian`, { headers: auth });
    assert.equal(image.status, 200);
    await second.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('crowd up refuses a non-loopback address', async () => {
  const { dir, env } = tempHome();
  try {
    await assert.rejects(upMain(['--listen', '0.0.0.0:7470'], { env, stdout: { write: () => true }, stderr: new PassThrough() }), /loopback only/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('crowd server on a non-loopback address makes a self-signed certificate before it listens', async () => {
  const { dir, env } = tempHome();
  try {
    const runner = new FakeRunner().on('openssl', { code: 1, stderr: 'no entropy today' });
    const run = start(serverMain, ['--listen', '10.255.255.1:7470', '--data-dir', join(dir, 'd')], env, runner);
    await assert.rejects(run.done, /no entropy today/);
    assert.equal(runner.calls.length, 1);
    assert.ok(runner.lines()[0]!.includes('subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1,IP:10.255.255.1'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('crowd server serves TLS with given files and prints the fingerprint clients pin', { skip: missingTools('openssl') }, async () => {
  const { dir, env } = tempHome();
  try {
    const tls = await ensureSelfSignedCert(new ExecRunner(), join(dir, 'certs'), []);
    const certDir = join(dir, 'certs', 'tls');
    const run = start(serverMain, ['--listen', '127.0.0.1:0', '--data-dir', join(dir, 'd'), '--tls-cert', join(certDir, 'server.crt'), '--tls-key', join(certDir, 'server.key')], env);
    const url = await run.url;
    assert.match(url, /^https:\/\//);
    const fingerprint = certFingerprint(tls.cert);
    assert.ok(run.output().includes(`TLS certificate fingerprint: ${fingerprint}`));
    const seen = await new Promise<string>((resolve, reject) => {
      get(`${url}/healthz`, { rejectUnauthorized: false }, (res) => {
        const raw = (res.socket as TLSSocket).getPeerCertificate().raw;
        res.resume();
        resolve(raw.toString('base64'));
      }).on('error', reject);
    });
    assert.equal(certFingerprint(`-----BEGIN CERTIFICATE-----\n${seen}\n-----END CERTIFICATE-----\n`), fingerprint);
    await run.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad flags are refused with the flag named', async () => {
  const io = { env: {}, stdout: { write: () => true }, stderr: new PassThrough() };
  await assert.rejects(serverMain(['--listen'], io), /--listen/);
  await assert.rejects(serverMain(['--colour', 'red'], io), /--colour/);
  await assert.rejects(serverMain(['--listen', 'nowhere'], io), /expected HOST:PORT/);
});
