import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exampleGuest } from './example-guest.ts';
import { guestUuid } from './guest-info.ts';
import { smbiosValues } from './smbios.ts';

test('a guest presents itself as OpenStack Nova with its UUID as serial and system UUID', () => {
  const u = guestUuid('vm_01JTESTGUEST0000000000000A');
  assert.deepEqual(smbiosValues(exampleGuest()), [
    `type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova,version=crowdcloud,serial=${u},uuid=${u},family=Virtual Machine`,
    'type=3,manufacturer=crowdcloud,asset=OpenStack Nova',
  ]);
});
