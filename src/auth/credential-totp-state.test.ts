import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CredentialTotpState, type TotpCredential } from './credential-totp-state.ts';
import { hashRecoveryCode } from './totp.ts';

/** The store's credential calls over a map, each write a separate await (as a real store's). */
function memoryCredentials() {
  const map = new Map<string, TotpCredential>();
  return {
    map,
    getCredential: async (id: string) => structuredClone(map.get(id)),
    putCredential: async (c: TotpCredential) => void map.set(c.id, structuredClone(c)),
    revokeCredentials: async (match: { id: string }) => {
      const c = map.get(match.id) as (TotpCredential & { revoked?: boolean }) | undefined;
      if (!c || c.revoked) return 0;
      c.revoked = true;
      return 1;
    },
  };
}

test('a step is claimed once, even by concurrent requests, and the record survives a new state over the same store', async () => {
  const creds = memoryCredentials();
  const a = new CredentialTotpState(creds, () => 0);
  await a.put('tina', { secret: 'JBSWY3DPEHPK3PXP', lastStep: 10, recoveryHashes: [hashRecoveryCode('aaaa-bbbb')] }, 'admin');
  const results = await Promise.all([a.claimStep('tina', 11), a.claimStep('tina', 11), a.claimStep('tina', 11)]);
  assert.deepEqual(results.sort(), [false, false, true]);
  assert.equal(await a.claimStep('tina', 9), false);
  const b = new CredentialTotpState(creds, () => 0);
  assert.equal((await b.get('tina'))?.lastStep, 11);
  assert.equal(creds.map.get('totp:tina')?.type, 'totp');
});

test('a recovery code works once; unknown users have no record', async () => {
  const creds = memoryCredentials();
  const s = new CredentialTotpState(creds, () => 0);
  await s.put('tina', { secret: 'JBSWY3DPEHPK3PXP', lastStep: 0, recoveryHashes: [hashRecoveryCode('aaaa-bbbb')] }, 'admin');
  assert.equal(await s.useRecoveryCode('tina', hashRecoveryCode('AAAA-BBBB')), true);
  assert.equal(await s.useRecoveryCode('tina', hashRecoveryCode('aaaa-bbbb')), false);
  assert.equal(await s.get('nobody'), undefined);
  assert.equal(await s.claimStep('nobody', 5), false);
});

test('a reset forgets the second factor once; a later enrolment writes it afresh', async () => {
  const creds = memoryCredentials();
  const s = new CredentialTotpState(creds, () => 0);
  await s.put('tina', { secret: 'JBSWY3DPEHPK3PXP', lastStep: 3, recoveryHashes: [] }, 'admin');
  assert.equal(await s.reset('tina'), true);
  assert.equal(await s.get('tina'), undefined);
  assert.equal(await s.reset('tina'), false);
  assert.equal(await s.claimStep('tina', 9), false, 'a reset user has no steps to claim');
  await s.put('tina', { secret: 'JBSWY3DPEHPK3PXP', lastStep: 0, recoveryHashes: [] }, 'tina');
  assert.equal((await s.get('tina'))?.lastStep, 0);
});
