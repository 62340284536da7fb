import { constants } from 'node:fs';
import { access, open, rm } from 'node:fs/promises';

const clusterBits = 16;
const clusterSize = 1 << clusterBits;
const headerLength = 112;
const backingFormatExtension = 0xe2792aca;
/** Bytes one L2 table maps: a cluster of 8-byte entries, each mapping a cluster. */
const l2Span = BigInt(clusterSize) * BigInt(clusterSize / 8);
/** One L1 cluster maps this many bytes (4 TiB); larger disks are refused rather than laid out differently. */
const maxBytes = l2Span * BigInt(clusterSize / 8);

/** The backing file of an overlay, and its format (written into the header so QEMU never probes it). */
export interface Qcow2Backing {
  path: string;
  format: 'qcow2' | 'raw';
}

/**
 * Pure: an empty qcow2 (version 3, 64 KiB clusters, 16-bit refcounts) of
 * `bytes` virtual size, optionally over a backing file — the same layout
 * `qemu-img create` writes (header, refcount table, refcount block, L1
 * table), so that starting a VM costs a file write instead of a process.
 */
export function qcow2Image(bytes: bigint, backing?: Qcow2Backing): Buffer {
  if (bytes <= 0n || bytes > maxBytes || bytes % 512n !== 0n) throw new RangeError(`qcow2 size must be a positive multiple of 512 up to ${maxBytes} bytes, got ${bytes}`);
  const l1Entries = Number((bytes + l2Span - 1n) / l2Span);
  const refcountTable = clusterSize;
  const refcountBlock = 2 * clusterSize;
  const l1Table = 3 * clusterSize;
  const name = backing ? Buffer.from(backing.path, 'utf8') : Buffer.alloc(0);
  const format = backing ? Buffer.from(backing.format, 'ascii') : Buffer.alloc(0);
  const extensions = backing ? 8 + pad8(format.length) : 0;
  const nameOffset = headerLength + extensions + 8;
  if (nameOffset + name.length > clusterSize || name.length > 1023) throw new RangeError(`qcow2 backing file name is too long: ${name.length} bytes`);
  const out = Buffer.alloc(l1Table + l1Entries * 8);
  out.write('QFI\xfb', 0, 'latin1');
  out.writeUInt32BE(3, 4);
  if (backing) {
    out.writeBigUInt64BE(BigInt(nameOffset), 8);
    out.writeUInt32BE(name.length, 16);
  }
  out.writeUInt32BE(clusterBits, 20);
  out.writeBigUInt64BE(bytes, 24);
  out.writeUInt32BE(l1Entries, 36);
  out.writeBigUInt64BE(BigInt(l1Table), 40);
  out.writeBigUInt64BE(BigInt(refcountTable), 48);
  out.writeUInt32BE(1, 56);
  out.writeUInt32BE(4, 96);
  out.writeUInt32BE(headerLength, 100);
  if (backing) {
    out.writeUInt32BE(backingFormatExtension, headerLength);
    out.writeUInt32BE(format.length, headerLength + 4);
    format.copy(out, headerLength + 8);
  }
  name.copy(out, nameOffset);
  out.writeBigUInt64BE(BigInt(refcountBlock), refcountTable);
  for (let c = 0; c < 4; c++) out.writeUInt16BE(1, refcountBlock + c * 2);
  return out;
}

function pad8(n: number): number {
  return (n + 7) & ~7;
}

/** Writes a new qcow2 at `path` (owner-only, never over an existing file); the backing file must exist. */
export async function createQcow2(path: string, bytes: bigint, backing?: Qcow2Backing): Promise<void> {
  const image = qcow2Image(bytes, backing);
  if (backing) await access(backing.path, constants.R_OK);
  const f = await open(path, 'wx', 0o600);
  try {
    await f.writeFile(image);
  } catch (e) {
    await rm(path, { force: true });
    throw e;
  } finally {
    await f.close();
  }
}
