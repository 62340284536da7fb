import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingTools } from '../base/require-tool.ts';
import type { AuthRequest } from './authenticator.ts';
import { formatBasic } from './basic-credentials.ts';
import { HtpasswdAuthenticator } from './htpasswd.ts';
import { bufferLogger } from './log-buffer.ts';

const skip = missingTools('htpasswd', 'openssl');

function req(authorization: string): AuthRequest {
  return { authorization, method: 'GET', path: '/v1/vms', source: '127.0.0.1' };
}

function htpasswd(file: string, flags: string[], user: string, password: string): void {
  execFileSync('htpasswd', ['-b', ...flags, file, user, password], { stdio: 'ignore' });
}

function withDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-htpasswd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const users: [string, string[], string][] = [
  ['bea', ['-B', '-C', '5'], 'bcrypt pass'],
  ['mia', ['-m'], 'apr1:pass:with:colons'],
  ['sam', ['-s'], 'sha1 pass'],
  ['tom', ['-2'], 'sha256 pass'],
  ['fay', ['-5'], 'sha512 pass ünïcode'],
];

test('every hash format Debian htpasswd and openssl write is verified', { skip }, async (t) => {
  const dir = withDir(t);
  const file = join(dir, 'users');
  writeFileSync(file, '# crowdcloud users\n\n');
  for (const [user, flags, password] of users) htpasswd(file, flags, user, password);
  appendFileSync(file, `ann:${execFileSync('openssl', ['passwd', '-5', 'openssl five']).toString().trim()}\n`);
  appendFileSync(file, `ole:${execFileSync('openssl', ['passwd', '-6', 'openssl six']).toString().trim()}\n`);
  const log = bufferLogger();
  const auth = new HtpasswdAuthenticator({ file, logger: log.logger, users: { bea: [{ project: 'p1', role: 'operator' }] } });
  const all = [...users.map(([u, , p]) => [u, p] as const), ['ann', 'openssl five'] as const, ['ole', 'openssl six'] as const];
  for (const [user, password] of all) {
    const ok = await auth.authenticate(req(formatBasic(user, password)));
    assert.equal(ok.outcome, 'ok', `${user} with the right password`);
    const bad = await auth.authenticate(req(formatBasic(user, password + 'x')));
    assert.deepEqual(bad, { outcome: 'deny', reason: 'wrong password' }, `${user} with a wrong password`);
  }
  const bea = await auth.authenticate(req(formatBasic('bea', 'bcrypt pass')));
  assert.deepEqual(bea, { outcome: 'ok', identity: { name: 'bea', authenticator: 'htpasswd', roles: { p1: 'operator' } } });
  for (const [, password] of all) assert.ok(!log.text().includes(password), 'no password in the log');
});

test('unknown users and other schemes are passed on, never claimed', { skip }, async (t) => {
  const file = join(withDir(t), 'users');
  htpasswd(file, ['-c', '-B', '-C', '4'], 'bea', 'secret');
  const auth = new HtpasswdAuthenticator({ file, logger: bufferLogger().logger });
  assert.deepEqual(await auth.authenticate(req(formatBasic('nobody', 'secret'))), { outcome: 'skip' });
  assert.deepEqual(await auth.authenticate(req('Bearer abc')), { outcome: 'skip' });
  assert.deepEqual(await auth.authenticate(req('Basic !!!')), { outcome: 'skip' });
  assert.deepEqual(await auth.authenticate(req('')), { outcome: 'skip' });
});

test('a changed file is picked up on the next request', { skip }, async (t) => {
  const file = join(withDir(t), 'users');
  htpasswd(file, ['-c', '-B', '-C', '4'], 'bea', 'first');
  const log = bufferLogger();
  const auth = new HtpasswdAuthenticator({ file, logger: log.logger });
  assert.equal((await auth.authenticate(req(formatBasic('bea', 'first')))).outcome, 'ok');
  htpasswd(file, ['-B', '-C', '4'], 'bea', 'second');
  htpasswd(file, ['-m'], 'new', 'newpass');
  assert.equal((await auth.authenticate(req(formatBasic('bea', 'first')))).outcome, 'deny');
  assert.equal((await auth.authenticate(req(formatBasic('bea', 'second')))).outcome, 'ok');
  assert.equal((await auth.authenticate(req(formatBasic('new', 'newpass')))).outcome, 'ok');
  execFileSync('htpasswd', ['-D', file, 'new'], { stdio: 'ignore' });
  assert.deepEqual(await auth.authenticate(req(formatBasic('new', 'newpass'))), { outcome: 'skip' });
  assert.match(log.text(), /Reloaded htpasswd file/);
});

test('a file that disappears keeps the users loaded before, says so once in the log, and is read again when back', { skip }, async (t) => {
  const file = join(withDir(t), 'users');
  htpasswd(file, ['-c', '-s'], 'sam', 'pw');
  const log = bufferLogger();
  const auth = new HtpasswdAuthenticator({ file, logger: log.logger });
  rmSync(file);
  assert.equal((await auth.authenticate(req(formatBasic('sam', 'pw')))).outcome, 'ok');
  assert.equal((await auth.authenticate(req(formatBasic('sam', 'pw')))).outcome, 'ok');
  assert.equal(log.text().match(/Cannot reload htpasswd file/g)?.length, 1, 'reported once');
  htpasswd(file, ['-c', '-s'], 'sam', 'pw2');
  assert.equal((await auth.authenticate(req(formatBasic('sam', 'pw2')))).outcome, 'ok');
});

test('DES crypt and plaintext entries are ignored with a warning that names the line, not the hash', { skip }, async (t) => {
  const file = join(withDir(t), 'users');
  htpasswd(file, ['-c', '-d'], 'des', 'despw');
  appendFileSync(file, 'plain:plaintextpw\nbroken\n');
  const log = bufferLogger();
  const auth = new HtpasswdAuthenticator({ file, logger: log.logger });
  assert.deepEqual(await auth.authenticate(req(formatBasic('des', 'despw'))), { outcome: 'skip' });
  assert.deepEqual(await auth.authenticate(req(formatBasic('plain', 'plaintextpw'))), { outcome: 'skip' });
  const text = log.text();
  assert.match(text, /line 1: user \\"des\\": unsupported hash format/);
  assert.match(text, /line 3: expected \\"user:hash\\"/);
  assert.ok(!text.includes('plaintextpw'));
  const desHash = readFileSync(file, 'utf8').split('\n')[0]!.split(':')[1]!;
  assert.ok(!text.includes(desHash));
});

test('a missing file at start is a clear error', () => {
  assert.throws(
    () => new HtpasswdAuthenticator({ file: '/nonexistent/users', logger: bufferLogger().logger }),
    /Cannot read htpasswd file "\/nonexistent\/users": ENOENT/,
  );
});
