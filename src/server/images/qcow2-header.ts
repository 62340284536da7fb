import { ApiError } from '../../api/errors.ts';

/** The fields of a qcow2 header that decide whether the image could reach outside itself. */
export interface Qcow2Header {
  version: number;
  backingFileOffset: bigint;
  sizeBytes: bigint;
  cryptMethod: number;
  incompatibleFeatures: bigint;
}

const externalDataFileBit = 1n << 2n;

/** Parses the fixed part of a qcow2 header (big-endian); undefined when too short or not qcow2. */
export function parseQcow2Header(head: Buffer): Qcow2Header | undefined {
  if (head.length < 72 || head.readUInt32BE(0) !== 0x514649fb) return undefined;
  const version = head.readUInt32BE(4);
  return {
    version,
    backingFileOffset: head.readBigUInt64BE(8),
    sizeBytes: head.readBigUInt64BE(24),
    cryptMethod: head.readUInt32BE(32),
    incompatibleFeatures: version >= 3 && head.length >= 80 ? head.readBigUInt64BE(72) : 0n,
  };
}

/**
 * Refuses a qcow2 before any tool opens it: a backing file or an external data
 * file would make qemu-img read other files of the server; encryption and
 * oversized disks are refused too.
 */
export function checkQcow2Header(head: Buffer, opts: { maxVirtualSizeBytes: number }): void {
  const h = parseQcow2Header(head);
  if (!h) throw new ApiError('invalid', 'Cannot import image: qcow2 header is truncated or corrupt');
  if (h.version !== 2 && h.version !== 3) {
    throw new ApiError('invalid', `Cannot import image: qcow2 version "${h.version}" is not supported`);
  }
  if (h.backingFileOffset !== 0n) {
    throw new ApiError('invalid', 'Cannot import image: qcow2 images with a backing file are refused');
  }
  if (h.incompatibleFeatures & externalDataFileBit) {
    throw new ApiError('invalid', 'Cannot import image: qcow2 images with an external data file are refused');
  }
  if (h.cryptMethod !== 0) throw new ApiError('invalid', 'Cannot import image: encrypted qcow2 images are refused');
  if (h.sizeBytes > BigInt(opts.maxVirtualSizeBytes)) throw virtualSizeTooLarge(h.sizeBytes, opts.maxVirtualSizeBytes);
}

/** The one message for a disk larger than the configured limit. */
export function virtualSizeTooLarge(size: bigint | number, max: number): ApiError {
  return new ApiError(
    'too_large',
    `Cannot import image: virtual size "${size}" bytes is above the limit of "${max}" bytes`,
  );
}
