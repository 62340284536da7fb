import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import bcrypt from 'bcryptjs';
import { TOTP } from 'otpauth';
import { formatBasic } from '../../auth/basic-credentials.ts';
import { HtpasswdAuthenticator } from '../../auth/htpasswd.ts';
import { TotpAuthenticator } from '../../auth/totp.ts';
import { FakeClock } from '../../base/clock.ts';
import { silentLogger } from '../../base/logger.ts';
import { buildTestApp, type TestApp } from '../test-app.ts';
import { CredentialTotpState } from '../../auth/credential-totp-state.ts';

const alice = { authorization: formatBasic('alice', 'alice pw') };
const bob = { authorization: formatBasic('bob', 'bob pw') };

/** An app whose chain has htpasswd users alice and bob with TOTP optional, over a clock the test moves. */
async function setup(t: TestContext): Promise<{ app: TestApp; clock: FakeClock }> {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-totp-routes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'htpasswd');
  writeFileSync(file, `alice:${bcrypt.hashSync('alice pw', 4)}\nbob:${bcrypt.hashSync('bob pw', 4)}\n`);
  const htpasswd = await new HtpasswdAuthenticator({ file, logger: silentLogger() }).ready();
  const clock = new FakeClock();
  let app: TestApp | undefined;
  const state = new CredentialTotpState(
    {
      getCredential: (id) => app!.store.getCredential(id),
      putCredential: (c) => app!.store.putCredential(c),
      revokeCredentials: (m) => app!.store.revokeCredentials(m),
    },
    () => clock.now(),
  );
  app = await buildTestApp({ clock, tokens: true, totp: state, authenticators: [new TotpAuthenticator({ inner: htpasswd, state, clock })] });
  t.after(() => app!.close());
  return { app, clock };
}

const codeAt = (secret: string, clock: FakeClock) => new TOTP({ secret }).generate({ timestamp: clock.now() });
const totpHeader = (code: string) => ({ authorization: formatBasic('alice', `alice pw:${code}`, 'TOTP') });

interface Enrolled {
  uri: string;
  secret: string;
  recoveryCodes: string[];
}

async function enrol(app: TestApp, headers: Record<string, string>): Promise<Enrolled> {
  const res = await app.app.inject({ method: 'POST', url: '/v1/totp/enrol', headers });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<Enrolled>();
}

const confirm = (app: TestApp, headers: Record<string, string>, code: string) => app.app.inject({ method: 'POST', url: '/v1/totp/confirm', headers, payload: { code } });
const status = async (app: TestApp, headers: Record<string, string>) => (await app.app.inject({ url: '/v1/tokens', headers })).statusCode;

test('a password user enrols, confirms with a first code, then needs a code each login, each code once', async (t) => {
  const { app, clock } = await setup(t);
  const e = await enrol(app, alice);
  assert.match(e.uri, /^otpauth:\/\/totp\/crowdcloud:alice\?/);
  assert.ok(e.uri.includes(`secret=${e.secret}`));
  assert.equal(e.recoveryCodes.length, 10);
  assert.equal(await status(app, alice), 200, 'a pending enrolment changes nothing yet');

  const first = codeAt(e.secret, clock);
  const ok = await confirm(app, alice, first);
  assert.equal(ok.statusCode, 200, ok.body);
  assert.deepEqual(ok.json(), { user: 'alice', enrolled: true });
  assert.equal((await app.store.getCredential('totp:alice'))?.type, 'totp');

  assert.equal(await status(app, alice), 401, 'plain Basic is refused once enrolled');
  assert.equal(await status(app, totpHeader(first)), 401, 'the confirming code cannot be replayed');
  clock.advance(30_000);
  const next = codeAt(e.secret, clock);
  assert.equal(await status(app, totpHeader(next)), 200);
  assert.equal(await status(app, totpHeader(next)), 401, 'a used code is refused');
  assert.equal(await status(app, totpHeader(e.recoveryCodes[0]!)), 200);
  assert.equal(await status(app, totpHeader(e.recoveryCodes[0]!)), 401, 'a recovery code works once');
  assert.equal(await status(app, bob), 200, 'other users are not affected');
});

test('a wrong first code stores nothing; five wrong codes drop the enrolment; without one confirm is not_found', async (t) => {
  const { app, clock } = await setup(t);
  const none = await confirm(app, alice, '123456');
  assert.equal(none.statusCode, 404);
  assert.equal(none.json<{ error: { code: string } }>().error.code, 'not_found');

  const e = await enrol(app, alice);
  const right = codeAt(e.secret, clock);
  const wrong = right === '000000' ? '000001' : '000000';
  const res = await confirm(app, alice, wrong);
  assert.equal(res.statusCode, 400);
  assert.equal(res.json<{ error: { code: string } }>().error.code, 'invalid');
  assert.equal(await app.store.getCredential('totp:alice'), undefined);
  assert.equal(await status(app, alice), 200);
  assert.equal((await confirm(app, alice, 'abc')).statusCode, 400, 'a malformed code is invalid');
  for (let i = 0; i < 4; i++) assert.equal((await confirm(app, alice, wrong)).statusCode, 400);
  assert.equal((await confirm(app, alice, right)).statusCode, 404, 'guessing ended the enrolment');

  const late = await enrol(app, alice);
  clock.advance(10 * 60_000);
  assert.equal((await confirm(app, alice, codeAt(late.secret, clock))).statusCode, 404, 'pending enrolments expire after 10 minutes');
  assert.equal(await app.store.getCredential('totp:alice'), undefined);
});

test('re-enrolling keeps the confirmed second factor until the new one is confirmed', async (t) => {
  const { app, clock } = await setup(t);
  const old = await enrol(app, alice);
  assert.equal((await confirm(app, alice, codeAt(old.secret, clock))).statusCode, 200);
  clock.advance(30_000);
  const fresh = await enrol(app, totpHeader(codeAt(old.secret, clock)));
  clock.advance(30_000);
  assert.equal(await status(app, totpHeader(codeAt(old.secret, clock))), 200, 'the old secret still logs in');
  clock.advance(30_000);
  const res = await confirm(app, totpHeader(codeAt(old.secret, clock)), codeAt(fresh.secret, clock));
  assert.equal(res.statusCode, 200, res.body);
  clock.advance(30_000);
  assert.equal(await status(app, totpHeader(codeAt(old.secret, clock))), 401, 'the old secret is replaced');
  assert.equal(await status(app, totpHeader(codeAt(fresh.secret, clock))), 200);
});

test('tokens cannot enrol: neither a static admin token nor a scoped token', async (t) => {
  const { app } = await setup(t);
  const minted = await app.app.inject({ method: 'POST', url: '/v1/tokens', headers: app.auth, payload: { project: 'default', scopes: ['*'], ttl: '1h' } });
  assert.equal(minted.statusCode, 201, minted.body);
  for (const headers of [app.auth, { authorization: `Bearer ${minted.json<{ token: string }>().token}` }]) {
    const res = await app.app.inject({ method: 'POST', url: '/v1/totp/enrol', headers });
    assert.equal(res.statusCode, 403, res.body);
    assert.match(res.json<{ error: { message: string } }>().error.message, /only a user who logged in with a password/);
    assert.equal((await confirm(app, headers, '123456')).statusCode, 403);
  }
  assert.equal((await app.app.inject({ method: 'POST', url: '/v1/totp/enrol' })).statusCode, 401);
});

test('a cluster admin resets a lost device; a user cannot; every call is audited without secrets or codes', async (t) => {
  const { app, clock } = await setup(t);
  const e = await enrol(app, alice);
  const code = codeAt(e.secret, clock);
  assert.equal((await confirm(app, alice, code)).statusCode, 200);
  assert.equal((await app.app.inject({ method: 'DELETE', url: '/v1/totp/alice', headers: bob })).statusCode, 403);
  assert.equal(await status(app, alice), 401);
  const reset = await app.app.inject({ method: 'DELETE', url: '/v1/totp/alice', headers: app.auth });
  assert.equal(reset.statusCode, 200, reset.body);
  assert.deepEqual(reset.json(), { user: 'alice', enrolled: false });
  assert.equal(await status(app, alice), 200, 'the password alone works again');
  assert.equal((await app.app.inject({ method: 'DELETE', url: '/v1/totp/alice', headers: app.auth })).statusCode, 404);
  const again = await enrol(app, alice);
  assert.equal((await confirm(app, alice, codeAt(again.secret, clock))).statusCode, 200, 'a reset user enrols afresh');
  assert.equal(await status(app, alice), 401);

  const audit = await app.store.listAudit({ limit: 100 });
  const totp = audit.filter((a) => a.kind === 'totp');
  assert.deepEqual(
    totp.map((a) => `${a.who} ${a.method} ${a.path} ${a.status}`).reverse().slice(0, 3),
    ['alice POST /v1/totp/enrol 201', 'alice POST /v1/totp/confirm 200', 'bob DELETE /v1/totp/alice 403'],
  );
  const text = JSON.stringify(audit);
  for (const secret of [e.secret, again.secret, code, ...e.recoveryCodes]) assert.ok(!text.includes(secret));
});
