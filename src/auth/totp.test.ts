import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Secret, TOTP } from 'otpauth';
import { FakeClock } from '../base/clock.ts';
import type { AuthRequest } from './authenticator.ts';
import { formatBasic } from './basic-credentials.ts';
import { HtpasswdAuthenticator } from './htpasswd.ts';
import { bufferLogger } from './log-buffer.ts';
import { confirmTotp, enrolTotp, MemoryTotpState, TotpAuthenticator, totpStep } from './totp.ts';

// Password "p" for both users, written by `htpasswd -nbB -C 4 bea p` and `htpasswd -nbs sam p`.
const htpasswd = 'bea:$2y$04$.eiLRNDw7N44iwPHCZRMJO0YUZQa1yqE9R2HVDGm6r0GEnZIIjfKS\nsam:{SHA}UWuXg/ylF+7L0dBk2i0WUxCxl1k=\n';

function code(secret: string, at: number): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: at });
}

function req(authorization: string): AuthRequest {
  return { authorization, method: 'GET', path: '/v1/vms', source: '127.0.0.1' };
}

async function setup(t: { after: (fn: () => void) => void }, opts: { required?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-totp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'users'), htpasswd);
  const inner = await new HtpasswdAuthenticator({ file: join(dir, 'users'), logger: bufferLogger().logger }).ready();
  const clock = new FakeClock();
  const state = new MemoryTotpState();
  const enrolment = enrolTotp('bea', { issuer: 'Crowd Test' });
  await state.put('bea', confirmTotp(enrolment.record, code(enrolment.secret, clock.now()), clock.now())!);
  const auth = new TotpAuthenticator({ inner, state, clock, required: opts.required });
  return { auth, clock, state, enrolment };
}

test('enrolment gives an otpauth URI, a secret and ten distinct recovery codes stored only hashed', () => {
  const e = enrolTotp('alice@example', { issuer: 'Crowd Test' });
  assert.match(e.uri, /^otpauth:\/\/totp\/Crowd%20Test:alice%40example\?issuer=Crowd%20Test&secret=[A-Z2-7]{32}&algorithm=SHA1&digits=6&period=30$/);
  assert.ok(e.uri.includes(e.secret));
  assert.equal(new Set(e.recoveryCodes).size, 10);
  for (const c of e.recoveryCodes) {
    assert.match(c, /^[a-z2-9]{4}(-[a-z2-9]{4}){3}$/);
    assert.ok(!e.record.recoveryHashes.includes(c));
  }
  assert.equal(e.record.lastStep, 0);
});

test('enrolment is confirmed only by a current code', () => {
  const e = enrolTotp('alice');
  const now = Date.parse('2026-03-01T12:00:00Z');
  const wrong = String((Number(code(e.secret, now)) + 1) % 1_000_000).padStart(6, '0');
  assert.equal(confirmTotp(e.record, wrong, now), undefined);
  assert.equal(confirmTotp(e.record, code(e.secret, now - 90_000), now), undefined);
  assert.equal(confirmTotp(e.record, code(e.secret, now), now)?.lastStep, Math.floor(now / 30_000));
  assert.equal(totpStep(e.secret, 'abcdef', now), undefined);
  assert.equal(totpStep(e.secret, '12345ü', now), undefined);
});

test('password and current code authenticate once; the same code again is a replay', async (t) => {
  const { auth, clock, enrolment } = await setup(t);
  clock.advance(30_000);
  const c = code(enrolment.secret, clock.now());
  const ok = await auth.authenticate(req(formatBasic('bea', `p:${c}`, 'TOTP')));
  assert.deepEqual(ok, { outcome: 'ok', identity: { name: 'bea', authenticator: 'htpasswd+totp' } });
  assert.deepEqual(await auth.authenticate(req(formatBasic('bea', `p:${c}`, 'TOTP'))), { outcome: 'deny', reason: 'code already used' });
  const previous = code(enrolment.secret, clock.now() - 30_000);
  assert.deepEqual(await auth.authenticate(req(formatBasic('bea', `p:${previous}`, 'TOTP'))), { outcome: 'deny', reason: 'code already used' });
  clock.advance(30_000);
  assert.equal((await auth.authenticate(req(formatBasic('bea', `p:${code(enrolment.secret, clock.now())}`, 'TOTP')))).outcome, 'ok');
});

test('a code one step off is accepted for clock skew, two steps off is not', async (t) => {
  const { auth, clock, enrolment } = await setup(t);
  clock.advance(10 * 30_000);
  assert.deepEqual(await auth.authenticate(req(formatBasic('bea', `p:${code(enrolment.secret, clock.now() - 60_000)}`, 'TOTP'))), { outcome: 'deny', reason: 'wrong code' });
  assert.equal((await auth.authenticate(req(formatBasic('bea', `p:${code(enrolment.secret, clock.now() + 30_000)}`, 'TOTP')))).outcome, 'ok');
});

test('a wrong password fails even with the right code, and unknown users are passed on', async (t) => {
  const { auth, clock, enrolment } = await setup(t);
  clock.advance(30_000);
  const c = code(enrolment.secret, clock.now());
  assert.equal((await auth.authenticate(req(formatBasic('bea', `wrong:${c}`, 'TOTP')))).outcome, 'deny');
  assert.deepEqual(await auth.authenticate(req(formatBasic('zed', `p:${c}`, 'TOTP'))), { outcome: 'skip' });
  assert.deepEqual(await auth.authenticate(req(formatBasic('bea', 'p', 'TOTP'))), { outcome: 'deny', reason: 'no code after the password' });
  assert.deepEqual(await auth.authenticate(req(formatBasic('sam', `p:${c}`, 'TOTP'))), { outcome: 'deny', reason: 'not enrolled in TOTP' });
});

test('enrolled users cannot use plain Basic; others can unless TOTP is required', async (t) => {
  const { auth } = await setup(t);
  assert.deepEqual(await auth.authenticate(req(formatBasic('bea', 'p'))), { outcome: 'deny', reason: 'second factor required' });
  assert.equal((await auth.authenticate(req(formatBasic('sam', 'p')))).outcome, 'ok');
  const strict = (await setup(t, { required: true })).auth;
  assert.deepEqual(await strict.authenticate(req(formatBasic('sam', 'p'))), { outcome: 'deny', reason: 'second factor required' });
  assert.deepEqual(await strict.authenticate(req('Bearer x')), { outcome: 'skip' });
  const enrol = { ...req(formatBasic('sam', 'p')), method: 'POST', path: '/v1/totp/enrol' };
  assert.equal((await strict.authenticate(enrol)).outcome, 'ok', 'an unenrolled user can still enrol');
  assert.deepEqual(await strict.authenticate({ ...enrol, path: '/v1/totp/enrol/x' }), { outcome: 'deny', reason: 'second factor required' });
  const enrolled = { ...req(formatBasic('bea', 'p')), method: 'POST', path: '/v1/totp/enrol' };
  assert.deepEqual(await strict.authenticate(enrolled), { outcome: 'deny', reason: 'second factor required' }, 'an enrolled user re-enrols with a code');
});

test('each recovery code works exactly once, in any case', async (t) => {
  const { auth, enrolment } = await setup(t);
  const [first, second] = enrolment.recoveryCodes as [string, string];
  assert.equal((await auth.authenticate(req(formatBasic('bea', `p:${first}`, 'TOTP')))).outcome, 'ok');
  assert.deepEqual(await auth.authenticate(req(formatBasic('bea', `p:${first}`, 'TOTP'))), { outcome: 'deny', reason: 'wrong or used recovery code' });
  assert.equal((await auth.authenticate(req(formatBasic('bea', `p:${second.toUpperCase()}`, 'TOTP')))).outcome, 'ok');
  assert.equal((await auth.authenticate(req(formatBasic('bea', 'p:aaaa-bbbb-cccc-dddd', 'TOTP')))).outcome, 'deny');
});
