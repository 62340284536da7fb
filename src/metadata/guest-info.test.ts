import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sshKeyNames } from './guest-info.ts';

test('SSH keys are named after safe, unique comments and otherwise by index', () => {
  assert.deepEqual(
    sshKeyNames([
      'ssh-ed25519 AAAA alice@host',
      'ssh-ed25519 BBBB',
      'ssh-ed25519 CCCC alice@host',
      'ssh-rsa DDDD has spaces in comment',
      'ssh-ed25519 EEEE we/ird',
      'ssh-ed25519 FFFF key-1',
    ]),
    ['alice@host', 'key-1', 'key-2', 'has', 'key-4', 'key-5'],
  );
});
