import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exampleGuest } from './example-guest.ts';
import { documentKey, renderGuestDocuments } from './guest-documents.ts';

const guest = exampleGuest();
const docs = renderGuestDocuments(guest);

test('OS parameters are served by visibility under /crowd/v1/os/parameters', () => {
  assert.equal(docs.get('crowd/v1/os/parameters')?.body.toString(), 'private.json\npublic.json\nsecret.json');
  assert.deepEqual(JSON.parse(docs.get('crowd/v1/os/parameters/public.json')!.body.toString()), { role: 'web' });
  assert.deepEqual(JSON.parse(docs.get('crowd/v1/os/parameters/private.json')!.body.toString()), { dbUser: 'private-user-value' });
  assert.deepEqual(JSON.parse(docs.get('crowd/v1/os/parameters/secret.json')!.body.toString()), { dbPassword: 'SECRET-VALUE-d41d8cd98f' });
});

test('private and secret values appear in no document but their own', () => {
  for (const [key, doc] of docs) {
    const body = doc.body.toString();
    if (key !== 'crowd/v1/os/parameters/secret.json') assert.ok(!body.includes('SECRET-VALUE'), key);
    if (key !== 'crowd/v1/os/parameters/private.json') assert.ok(!body.includes('private-user-value'), key);
  }
});

test('every EC2 version folds to latest, unknown versions to nothing', () => {
  assert.equal(documentKey([]), '');
  assert.equal(documentKey(['2009-04-04', 'meta-data', 'instance-id']), 'latest/meta-data/instance-id');
  assert.equal(documentKey(['2021-03-23', 'meta-data']), 'latest/meta-data');
  assert.equal(documentKey(['latest']), 'latest');
  assert.equal(documentKey(['1999-01-01', 'meta-data']), undefined);
  assert.equal(documentKey(['meta-data']), undefined);
});

test('OpenStack versions fold to latest, unknown versions to nothing', () => {
  assert.equal(documentKey(['openstack']), 'openstack');
  assert.equal(documentKey(['openstack', '2018-08-27', 'meta_data.json']), 'openstack/latest/meta_data.json');
  assert.equal(documentKey(['openstack', '2012-08-10']), 'openstack/latest');
  assert.equal(documentKey(['openstack', '2099-01-01', 'meta_data.json']), undefined);
});

test('crowd paths map to themselves', () => {
  assert.equal(documentKey(['crowd', 'v1', 'os', 'parameters', 'public.json']), 'crowd/v1/os/parameters/public.json');
});
