/**
 * What the first bytes of a file say it is. Decided from content only, never
 * from a file name; anything unrecognised is raw (raw is always safe to read).
 */
export type ProbedFormat = 'gzip' | 'xz' | 'iso' | 'qcow2' | 'vmdk' | 'vmdk-descriptor' | 'vdi' | 'vhdx' | 'raw';

/** How many leading bytes `probeFormat` needs to see (ISO 9660 descriptors sit up to 0x9006). */
export const probeBytes = 64 * 1024;

const isoOffsets = [0x8001, 0x8801, 0x9001];

function startsWith(head: Buffer, magic: Buffer | string, offset = 0): boolean {
  const m = typeof magic === 'string' ? Buffer.from(magic, 'latin1') : magic;
  return head.length >= offset + m.length && head.subarray(offset, offset + m.length).equals(m);
}

/** Classifies a file from its first `probeBytes` bytes. */
export function probeFormat(head: Buffer): ProbedFormat {
  if (startsWith(head, Buffer.from([0x1f, 0x8b]))) return 'gzip';
  if (startsWith(head, Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (startsWith(head, 'QFI\xfb')) return 'qcow2';
  if (startsWith(head, 'KDMV')) return 'vmdk';
  if (startsWith(head, 'vhdxfile')) return 'vhdx';
  if (head.length >= 0x44 && head.readUInt32LE(0x40) === 0xbeda107f) return 'vdi';
  if (isVmdkDescriptor(head)) return 'vmdk-descriptor';
  if (isoOffsets.some((o) => startsWith(head, 'CD001', o))) return 'iso';
  return 'raw';
}

/** A text VMDK descriptor names its extents as other files, so it can never be a self-contained image. */
function isVmdkDescriptor(head: Buffer): boolean {
  const text = head.subarray(0, 1024).toString('latin1');
  return /^\s*#\s*Disk DescriptorFile/i.test(text) || /^\s*createType\s*=/im.test(text);
}
