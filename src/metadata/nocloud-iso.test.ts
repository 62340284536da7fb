import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingTools } from '../base/require-tool.ts';
import { ExecRunner, FakeRunner } from '../base/runner.ts';
import { exampleGuest } from './example-guest.ts';
import { buildNocloudIso } from './nocloud-iso.ts';
import { renderNocloudSeed } from './nocloud.ts';

test('the seed ISO is built by genisoimage with volume id cidata, Joliet and Rock Ridge, and its temp dir is removed', async () => {
  const runner = new FakeRunner();
  const before = (await readdir(tmpdir())).filter((n) => n.startsWith('crowd-cidata-'));
  await buildNocloudIso(runner, exampleGuest(), '/var/lib/crowd/vm/seed.iso');
  const argv = runner.calls[0]!.argv;
  const dir = argv.at(-1)!.slice(0, -'/network-config'.length);
  assert.deepEqual(argv, [
    'genisoimage', '-quiet', '-output', '/var/lib/crowd/vm/seed.iso', '-V', 'cidata', '-J', '-r',
    `${dir}/user-data`, `${dir}/meta-data`, `${dir}/network-config`,
  ]);
  const after = (await readdir(tmpdir())).filter((n) => n.startsWith('crowd-cidata-'));
  assert.deepEqual(after, before);
});

test('a failing genisoimage fails the build and still removes the temp dir', async () => {
  const runner = new FakeRunner().on('genisoimage', { code: 1, stderr: 'no space' });
  const before = (await readdir(tmpdir())).filter((n) => n.startsWith('crowd-cidata-'));
  await assert.rejects(buildNocloudIso(runner, exampleGuest(), '/nowhere/seed.iso'), /no space/);
  assert.deepEqual((await readdir(tmpdir())).filter((n) => n.startsWith('crowd-cidata-')), before);
});

test('a real seed ISO carries the label cidata and the three files', { skip: missingTools('genisoimage', 'isoinfo') }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'crowd-seedtest-'));
  try {
    const iso = join(dir, 'seed.iso');
    const runner = new ExecRunner();
    await buildNocloudIso(runner, exampleGuest(), iso);
    const info = await runner.run({ argv: ['isoinfo', '-d', '-i', iso] });
    assert.match(info.stdout, /^Volume id: cidata$/m);
    const seed = renderNocloudSeed(exampleGuest());
    for (const name of ['user-data', 'meta-data', 'network-config'] as const) {
      const out = await runner.run({ argv: ['isoinfo', '-J', '-i', iso, '-x', `/${name}`] });
      assert.equal(out.stdout, seed[name], name);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
