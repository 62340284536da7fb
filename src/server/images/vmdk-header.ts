import { ApiError } from '../../api/errors.ts';

/**
 * Refuses a sparse vmdk (KDMV) whose header leaves the capacity at zero:
 * qemu then reads the embedded descriptor as a descriptor file and opens
 * every extent it names, e.g. a FLAT extent on "/etc/shadow", before any
 * later check could see it.
 */
export function checkVmdkHeader(head: Buffer): void {
  if (head.length < 44 || head.toString('latin1', 0, 4) !== 'KDMV') {
    throw new ApiError('invalid', 'Cannot import image: vmdk header is truncated or corrupt');
  }
  if (head.readBigUInt64LE(12) === 0n) {
    throw new ApiError('invalid', 'Cannot import image: vmdk images with extents in other files are refused');
  }
}
