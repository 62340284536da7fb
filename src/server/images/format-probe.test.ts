import assert from 'node:assert/strict';
import { test } from 'node:test';
import { probeFormat } from './format-probe.ts';
import { checkQcow2Header, parseQcow2Header } from './qcow2-header.ts';
import { checkVmdkHeader } from './vmdk-header.ts';

function at(offset: number, magic: Buffer | string, length = 0x9100): Buffer {
  const b = Buffer.alloc(length);
  (typeof magic === 'string' ? Buffer.from(magic, 'latin1') : magic).copy(b, offset);
  return b;
}

test('formats are recognised by their magic bytes, whatever the file is called', () => {
  assert.equal(probeFormat(at(0, Buffer.from([0x1f, 0x8b, 8]))), 'gzip');
  assert.equal(probeFormat(at(0, Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]))), 'xz');
  assert.equal(probeFormat(at(0, 'QFI\xfb')), 'qcow2');
  assert.equal(probeFormat(at(0, 'KDMV')), 'vmdk');
  assert.equal(probeFormat(at(0, 'vhdxfile')), 'vhdx');
  assert.equal(probeFormat(at(0x40, Buffer.from([0x7f, 0x10, 0xda, 0xbe]))), 'vdi');
  assert.equal(probeFormat(at(0, '# Disk DescriptorFile\n')), 'vmdk-descriptor');
  assert.equal(probeFormat(at(0, 'version=1\ncreateType="monolithicFlat"\n')), 'vmdk-descriptor');
});

test('ISO 9660 is found at any of its three descriptor offsets', () => {
  for (const o of [0x8001, 0x8801, 0x9001]) assert.equal(probeFormat(at(o, 'CD001')), 'iso');
});

test('anything unrecognised, including short input, is raw', () => {
  assert.equal(probeFormat(Buffer.alloc(0)), 'raw');
  assert.equal(probeFormat(Buffer.from('QFI')), 'raw');
  assert.equal(probeFormat(at(0x8000, 'CD001')), 'raw');
});

function header(fields: { version?: number; backing?: bigint; size?: bigint; crypt?: number; incompat?: bigint }): Buffer {
  const b = Buffer.alloc(104);
  b.writeUInt32BE(0x514649fb, 0);
  b.writeUInt32BE(fields.version ?? 3, 4);
  b.writeBigUInt64BE(fields.backing ?? 0n, 8);
  b.writeBigUInt64BE(fields.size ?? 1n << 21n, 24);
  b.writeUInt32BE(fields.crypt ?? 0, 32);
  b.writeBigUInt64BE(fields.incompat ?? 0n, 72);
  return b;
}
const limit = { maxVirtualSizeBytes: 1 << 30 };

test('a plain qcow2 header passes and parses', () => {
  assert.doesNotThrow(() => checkQcow2Header(header({}), limit));
  assert.equal(parseQcow2Header(header({}))?.sizeBytes, 1n << 21n);
});

test('a qcow2 header naming a backing file, a data file or encryption is refused before any tool runs', () => {
  assert.throws(() => checkQcow2Header(header({ backing: 512n }), limit), /backing file are refused/);
  assert.throws(() => checkQcow2Header(header({ incompat: 4n }), limit), /external data file are refused/);
  assert.throws(() => checkQcow2Header(header({ crypt: 2 }), limit), /encrypted qcow2 images are refused/);
});

test('a qcow2 header with an unknown version, a short header or a huge size is refused', () => {
  assert.throws(() => checkQcow2Header(header({ version: 9 }), limit), /version "9" is not supported/);
  assert.throws(() => checkQcow2Header(header({}).subarray(0, 40), limit), /truncated or corrupt/);
  assert.throws(() => checkQcow2Header(header({ size: 1n << 40n }), limit), { code: 'too_large' });
});

test('a sparse vmdk with zero capacity (its embedded descriptor would name extents) is refused', () => {
  const kdmv = (capacity: bigint) => {
    const b = at(0, 'KDMV', 512);
    b.writeBigUInt64LE(capacity, 12);
    return b;
  };
  assert.doesNotThrow(() => checkVmdkHeader(kdmv(4096n)));
  assert.throws(() => checkVmdkHeader(kdmv(0n)), /extents in other files are refused/);
  assert.throws(() => checkVmdkHeader(kdmv(1n).subarray(0, 20)), /truncated or corrupt/);
});
