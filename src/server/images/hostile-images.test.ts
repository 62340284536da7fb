import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { ApiError } from '../../api/errors.ts';
import { missingTools } from '../../base/require-tool.ts';
import { ExecRunner } from '../../base/runner.ts';
import { ImageRepository } from './image-repository.ts';
import { filesUnder, makeTestImages, type TestImages } from './test-images.ts';

const skip = missingTools('qemu-img', 'xz', 'genisoimage', 'prlimit');
const MiB = 1024 * 1024;

describe('hostile images are refused with nothing left in the data dir', { skip }, () => {
  let root: string;
  let fixtures: string;
  let images: TestImages;
  let n = 0;

  before(() => {
    root = mkdtempSync(join(tmpdir(), 'crowd-hostile-'));
    fixtures = mkdtempSync(join(root, 'fixtures-'));
    images = makeTestImages(fixtures);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const file = (name: string, content: Buffer | string) => {
    const p = join(fixtures, name);
    writeFileSync(p, content);
    return p;
  };
  const qemuImg = (...args: string[]) => execFileSync('qemu-img', args, { stdio: 'ignore' });

  /** Uploads `path`, expects the refusal, checks the data dir is empty; returns the commands that ran. */
  async function refused(path: string, code: string, message: RegExp): Promise<string[]> {
    const dataDir = join(root, `data-${n++}`);
    const ran: string[] = [];
    const exec = new ExecRunner();
    const repo = new ImageRepository({
      dataDir,
      runner: { run: (cmd) => (ran.push(cmd.argv.join(' ')), exec.run(cmd)) },
      limits: { maxVirtualSizeBytes: 64 * MiB, maxDecompressedBytes: 16 * MiB },
    });
    await repo.init();
    await assert.rejects(repo.upload(createReadStream(path)), (e: ApiError) => {
      assert.equal(e.name, 'ApiError', e.message);
      assert.equal(e.code, code, e.message);
      assert.match(e.message, message);
      return true;
    });
    assert.deepEqual(filesUnder(dataDir), []);
    return ran;
  }

  test('a qcow2 whose backing file is /etc/shadow', async () => {
    const p = join(fixtures, 'backing.qcow2');
    qemuImg('create', '-f', 'qcow2', '-u', '-b', '/etc/shadow', '-F', 'raw', p, '2M');
    assert.deepEqual(await refused(p, 'invalid', /backing file are refused/), [], 'no tool opened it');
  });

  test('a qcow2 with an external data file', async () => {
    const p = join(fixtures, 'data-file.qcow2');
    qemuImg('create', '-f', 'qcow2', '-o', `data_file=${join(fixtures, 'outside.raw')}`, p, '2M');
    assert.deepEqual(await refused(p, 'invalid', /external data file are refused/), [], 'no tool opened it');
  });

  test('a vmdk descriptor whose extent points outside the file', async () => {
    const p = file(
      'outside.vmdk',
      '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\nRW 4096 FLAT "/etc/shadow" 0\n',
    );
    assert.deepEqual(await refused(p, 'invalid', /extents in other files are refused/), [], 'no tool opened it');
  });

  test('a sparse vmdk whose embedded descriptor names /etc/shadow as a flat extent', async () => {
    const b = Buffer.from(readFileSync(images.disks.vmdk));
    b.writeBigUInt64LE(0n, 12);
    const desc = b.indexOf('createType="monolithicSparse"');
    b.write('createType="monolithicFlat"\n#', desc, 'latin1');
    const extent = b.indexOf('RW 4096 SPARSE');
    b.write('RW 4096 FLAT "/etc/shadow" 0\n#', extent, 'latin1');
    const p = file('embedded.vmdk', b);
    assert.deepEqual(await refused(p, 'invalid', /extents in other files are refused/), [], 'no tool opened it');
  });

  test('a qcow2 with a virtual size above the limit', async () => {
    const p = join(fixtures, 'huge.qcow2');
    qemuImg('create', '-f', 'qcow2', p, '1T');
    await refused(p, 'too_large', /virtual size "1099511627776" bytes is above the limit/);
  });

  test('a vdi with a virtual size above the limit', async () => {
    const p = join(fixtures, 'huge.vdi');
    qemuImg('create', '-f', 'vdi', p, '100G');
    await refused(p, 'too_large', /virtual size ".*" bytes is above the limit/);
  });

  test('a gzip bomb', async () => {
    await refused(file('bomb.gz', gzipSync(Buffer.alloc(64 * MiB))), 'too_large', /expands beyond the limit/);
  });

  test('an xz bomb', async () => {
    const xz = execFileSync('xz', ['-c', '-T1'], { input: Buffer.alloc(64 * MiB), maxBuffer: 64 * MiB });
    await refused(file('bomb.xz', xz), 'too_large', /expands beyond the limit/);
  });

  test('a truncated qcow2', async () => {
    const bytes = readFileSync(images.disks.qcow2);
    await refused(file('truncated.qcow2', bytes.subarray(0, 400 * 1024)), 'invalid', /Cannot check image/);
  });

  test('random bytes behind a valid qcow2 header', async () => {
    const header = readFileSync(images.disks.qcow2).subarray(0, 512);
    await refused(file('noise.qcow2', Buffer.concat([header, randomBytes(1200 * 1024)])), 'invalid', /Cannot (read|check) image/);
  });

  test('random bytes behind the qcow2 magic', async () => {
    const p = file('magic.qcow2', Buffer.concat([Buffer.from('QFI\xfb', 'latin1'), randomBytes(MiB)]));
    await refused(p, 'invalid', /qcow2/);
  });

  test('a truncated gzip stream', async () => {
    const gz = readFileSync(images.compressed['raw.gz']);
    await refused(file('cut.gz', gz.subarray(0, gz.length - 100)), 'invalid', /gzip data is corrupt or truncated/);
  });

  test('a gzip inside a gzip', async () => {
    await refused(file('twice.gz', gzipSync(gzipSync(Buffer.alloc(1024)))), 'invalid', /compressed data inside compressed data/);
  });
});
