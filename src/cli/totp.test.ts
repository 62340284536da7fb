import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { TOTP } from 'otpauth';
import { HtpasswdAuthenticator } from '../auth/htpasswd.ts';
import { TotpAuthenticator } from '../auth/totp.ts';
import { systemClock } from '../base/clock.ts';
import { silentLogger } from '../base/logger.ts';
import { CredentialTotpState } from '../auth/credential-totp-state.ts';
import { buildTestApp, testToken, type TestApp } from '../server/test-app.ts';
import { runCaptured, type RunOptions } from './captured-io.ts';
import { runCli } from './main.ts';

let t: TestApp | undefined;
let dir: string;
let env: Record<string, string>;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crowd-cli-totp-'));
  const file = join(dir, 'htpasswd');
  writeFileSync(file, `alice:${bcrypt.hashSync('alice pw', 4)}\n`);
  const htpasswd = await new HtpasswdAuthenticator({ file, logger: silentLogger() }).ready();
  const state = new CredentialTotpState(
    { getCredential: (id) => t!.store.getCredential(id), putCredential: (c) => t!.store.putCredential(c), revokeCredentials: (m) => t!.store.revokeCredentials(m) },
    () => systemClock.now(),
  );
  t = await buildTestApp({ tokens: true, totp: state, authenticators: [new TotpAuthenticator({ inner: htpasswd, state, clock: systemClock })] });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  env = { CROWD_URL: `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`, CROWD_TOKEN: testToken, CROWD_CONFIG: join(dir, 'config.yaml') };
});
after(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

const crowd = (argv: string[], opts: RunOptions = {}) => runCaptured(argv, { env, ...opts });
const noToken = () => ({ ...env, CROWD_TOKEN: '' });

/** Runs `crowd totp enrol` as a person would: the password first, the code only after the URI was shown. */
async function enrolInteractively(): Promise<{ code: number; stdout: string; stderr: string; secret: string; first: string }> {
  const stdin = new PassThrough();
  stdin.write('alice pw\n');
  let stdout = '';
  let stderr = '';
  let secret = '';
  let first = '';
  const code = await runCli(['totp', 'enrol', '--user', 'alice'], {
    stdin,
    env: noToken(),
    stderr: { write: (s: string) => (stderr += s) },
    stdout: {
      write: (s: string) => {
        stdout += s;
        const m = /otpauth:\/\/\S*[?&]secret=([A-Z2-7]+)/.exec(s);
        if (m) {
          secret = m[1]!;
          first = new TOTP({ secret }).generate();
          stdin.end(`${first}\n`);
        }
      },
    },
  });
  return { code, stdout, stderr, secret, first };
}

test('totp enrol prints the URI and recovery codes, confirms the code typed next; login then needs a second factor', async () => {
  assert.equal((await crowd(['role', 'bind', 'default', 'alice', 'admin'])).code, 0);
  const run = await enrolInteractively();
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /TOTP enrolled for "alice"/);
  const recovery = run.stdout.match(/^ {2}[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$/gm) ?? [];
  assert.equal(recovery.length, 10);
  assert.ok(!run.stderr.includes('alice pw'));

  assert.equal((await crowd(['login', '--user', 'alice', '--project', 'default'], { env: noToken(), stdin: 'alice pw\n' })).code, 1, 'the password alone is refused');
  const replay = await crowd(['login', '--user', 'alice', '--project', 'default', '--code', run.first], { env: noToken(), stdin: 'alice pw\n' });
  assert.equal(replay.code, 1, 'the confirming code cannot log in again');
  const rescue = await crowd(['login', '--user', 'alice', '--project', 'default', '--code', recovery[0]!.trim()], { env: noToken(), stdin: 'alice pw\n' });
  assert.equal(rescue.code, 0, rescue.stderr);
});

test('totp reset USER lets the password alone work again; a second reset finds nothing', async () => {
  const reset = await crowd(['totp', 'reset', 'alice']);
  assert.equal(reset.code, 0, reset.stderr);
  assert.match(reset.stdout, /TOTP of user "alice" reset/);
  const again = await crowd(['totp', 'reset', 'alice']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /Cannot find TOTP enrolment of user "alice"/);
  assert.equal((await crowd(['login', '--user', 'alice', '--project', 'default'], { env: noToken(), stdin: 'alice pw\n' })).code, 0);
});

test('a malformed --code is a usage error before anything is sent; a wrong first code or password is refused', async () => {
  const malformed = await crowd(['totp', 'enrol', '--user', 'alice', '--code', '12'], { env: noToken(), stdin: 'alice pw\n' });
  assert.equal(malformed.code, 2);
  assert.match(malformed.stderr, /Invalid code "12"/);
  const wrong = await crowd(['totp', 'enrol', '--user', 'alice', '--code', '000000'], { env: noToken(), stdin: 'alice pw\n' });
  const stored = await t!.store.getCredential('totp:alice');
  if (wrong.code === 0) assert.equal(stored?.revoked, undefined, '000000 happened to be the code');
  else {
    assert.match(wrong.stderr, /wrong code/);
    assert.equal(stored?.revoked, true, 'nothing new was stored');
  }
  const badPassword = await crowd(['totp', 'enrol', '--user', 'alice', '--code', '123456'], { env: noToken(), stdin: 'nope\n' });
  assert.equal(badPassword.code, 1);
  assert.equal((await crowd(['totp', 'enrol', '--user', 'alice'], { env: noToken() })).code, 2, 'no password on stdin');
});
