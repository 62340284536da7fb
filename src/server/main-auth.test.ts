import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { stringify } from 'yaml';
import type { AuditEntry } from '../api/wire.ts';
import { formatBasic } from '../auth/basic-credentials.ts';
import { slapdSuffix as base, startSlapd } from '../auth/slapd-fixture.ts';
import { missingTools } from '../base/require-tool.ts';
import { ExecRunner } from '../base/runner.ts';
import { serverMain, type MainIo } from './main.ts';

const skip = missingTools('htpasswd', 'slapd', 'ldapadd', 'openssl');

/** Runs `crowd server` in-process with the log captured; resolves `url` once it listens. */
function startServer(argv: string[], dir: string) {
  const ctl = new AbortController();
  let out = '';
  let log = '';
  let listening!: (url: string) => void;
  const url = new Promise<string>((r) => (listening = r));
  const stderr = new Writable({
    write(chunk, _enc, cb) {
      log += String(chunk);
      cb();
    },
  });
  const io: MainIo = { env: { HOME: dir }, stdout: { write: (s: string) => (out += s) }, stderr, signal: ctl.signal, onListening: listening };
  const done = serverMain(['--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data'), ...argv], io);
  const ready = Promise.race([url, done.then(() => Promise.reject(new Error(`exited before listening: ${out}`)))]);
  ready.catch(() => {});
  return {
    url: ready,
    done,
    output: () => out,
    log: () => log,
    stop: async () => {
      ctl.abort();
      await done;
    },
  };
}

const people = `ou=people,${base}`;
const groups = `ou=groups,${base}`;
const directory = [
  `dn: ${people}\nobjectClass: organizationalUnit\nou: people\n`,
  `dn: ${groups}\nobjectClass: organizationalUnit\nou: groups\n`,
  `dn: uid=lena,${people}\nobjectClass: inetOrgPerson\nuid: lena\ncn: lena\nsn: lena\nuserPassword: lena-secret-pw\n`,
  `dn: cn=ops,${groups}\nobjectClass: groupOfNames\ncn: ops\nmember: uid=lena,${people}\n`,
].join('\n');

test('crowd server --auth-config: htpasswd and LDAP users through the real server, audited, with no secret in the log', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-auth-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const slapd = await startSlapd(t);
  slapd.add(directory);
  const runner = new ExecRunner();
  const htpasswd = join(dir, 'htpasswd');
  await runner.run({ argv: ['htpasswd', '-c', '-b', '-B', '-C', '5', htpasswd, 'alice', 'alice-secret-pw'] });
  await runner.run({ argv: ['htpasswd', '-b', '-m', htpasswd, 'bob', 'bob-secret-pw'] });
  const key = join(dir, 'scoped.key');
  writeFileSync(key, Buffer.alloc(32, 7), { mode: 0o600 });
  const config = join(dir, 'auth.yaml');
  writeFileSync(
    config,
    stringify({
      authenticators: [
        { type: 'htpasswd', file: htpasswd, users: { alice: [{ project: 'p1', role: 'admin' }] } },
        { type: 'ldap', url: slapd.url, bindDn: `cn=svc,${base}`, bindPassword: 'svcpw', userBase: people, groups: { [`cn=ops,${groups}`]: [{ project: 'p1', role: 'operator' }] } },
        { type: 'scoped-token', keyFiles: [key] },
      ],
    }),
  );
  const server = startServer(['--auth-config', config], dir);
  const url = await server.url;
  const admin = /Admin token[^\n]*\n\s+(\S+)/.exec(server.output())![1]!;
  const call = (path: string, authorization?: string, init: { method?: string; body?: unknown } = {}) =>
    fetch(`${url}${path}`, {
      method: init.method ?? 'GET',
      headers: { ...(authorization ? { authorization } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}) },
      ...(init.body ? { body: JSON.stringify(init.body) } : {}),
    });
  try {
    assert.equal((await call('/v1/projects', `Bearer ${admin}`, { method: 'POST', body: { name: 'p1', spec: {} } })).status, 201);
    const alice = formatBasic('alice', 'alice-secret-pw');
    const created = await call('/v1/networks?project=p1', alice, { method: 'POST', body: { name: 'lan', spec: { ipv4: { subnet: '10.9.0.0/24' } } } });
    assert.equal(created.status, 201, await created.text());
    assert.equal((await call('/v1/networks?project=p1', formatBasic('bob', 'bob-secret-pw'))).status, 403, 'bob has no role');
    const lena = formatBasic('lena', 'lena-secret-pw');
    assert.equal((await call('/v1/networks?project=p1', lena)).status, 200);
    assert.equal((await call('/v1/networks?project=p1', lena, { method: 'POST', body: { name: 'x', spec: {} } })).status, 403, 'operators cannot change networks');
    // Wrong password and unknown user look the same.
    const wrong = await call('/v1/projects', formatBasic('alice', 'not-her-pw'));
    const unknown = await call('/v1/projects', formatBasic('nobody', 'not-her-pw'));
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    assert.equal(await wrong.text(), await unknown.text());
    const minted = await call('/v1/tokens', alice, { method: 'POST', body: { project: 'p1', scopes: ['network:read'], ttl: '1h' } });
    assert.equal(minted.status, 201);
    const token = ((await minted.json()) as { token: string }).token;
    assert.equal((await call('/v1/networks?project=p1', `Bearer ${token}`)).status, 200);
    const audit = (await (await call('/v1/audit', `Bearer ${admin}`)).json()) as { items: AuditEntry[] };
    const entry = audit.items.find((e) => e.method === 'POST' && e.path === '/v1/networks' && e.status === 201);
    assert.equal(entry?.who, 'alice');
    assert.equal(entry?.authenticator, 'htpasswd');
    await server.stop();
    const log = server.log();
    assert.ok(log.length > 0, 'the server logged something');
    for (const secret of ['alice-secret-pw', 'bob-secret-pw', 'lena-secret-pw', 'not-her-pw', 'svcpw', admin, token, alice.split(' ')[1]!, token.split('.')[1]!]) {
      assert.ok(!log.includes(secret), `the log holds a secret: ${secret.slice(0, 6)}…`);
    }
  } finally {
    await server.stop();
  }
});

test('crowd server refuses a bad auth config, naming the entry and field, and never listens', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-auth-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'auth.json');
  writeFileSync(config, JSON.stringify([{ type: 'scoped-token', keyFiles: [join(dir, 'k')] }, { type: 'webhook', url: 'ftp://x' }]));
  const server = startServer(['--auth-config', config], dir);
  await assert.rejects(server.done, /authenticators\[1\]\.url/);
  writeFileSync(config, JSON.stringify([{ type: 'scoped-token', keyFiles: [join(dir, 'missing.key')] }]));
  const again = startServer(['--auth-config', config], dir);
  await assert.rejects(again.done, /authenticators\[0\] \(scoped-token\).*missing\.key/);
  assert.equal(server.output() + again.output(), '', 'nothing was served');
});
