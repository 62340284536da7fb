import { ApiError } from '../../api/errors.ts';
import { virtualSizeTooLarge } from './qcow2-header.ts';

/** The qemu-img formats crowdcloud accepts as disks. */
export type DiskFormat = 'raw' | 'qcow2' | 'vmdk' | 'vdi' | 'vhdx';

interface QemuImgInfo {
  format?: unknown;
  'virtual-size'?: unknown;
  'backing-filename'?: unknown;
  'full-backing-filename'?: unknown;
  'backing-filename-format'?: unknown;
  encrypted?: unknown;
  'format-specific'?: { type?: unknown; data?: Record<string, unknown> };
}

function refuse(detail: string): ApiError {
  return new ApiError('invalid', `Cannot import image: ${detail}`);
}

/**
 * Checks the JSON of `qemu-img info` for anything that reaches outside the
 * file (backing file, data file, foreign vmdk extents), encryption, and the
 * virtual size limit; returns the virtual size.
 */
export function checkImageInfo(
  info: unknown,
  opts: { format: DiskFormat; path: string; maxVirtualSizeBytes: number },
): { virtualSizeBytes: number } {
  if (!info || typeof info !== 'object') throw refuse('qemu-img gave no image information');
  const i = info as QemuImgInfo;
  if (i.format !== opts.format) throw refuse(`content is "${String(i.format)}", expected "${opts.format}"`);
  if (i['backing-filename'] !== undefined || i['full-backing-filename'] !== undefined || i['backing-filename-format'] !== undefined) {
    throw refuse(`${opts.format} images with a backing file are refused`);
  }
  if (i.encrypted === true) throw refuse('encrypted images are refused');
  const data = i['format-specific']?.data ?? {};
  if (data['data-file'] !== undefined) throw refuse(`${opts.format} images with an external data file are refused`);
  if (data.corrupt === true) throw refuse(`${opts.format} image is marked corrupt`);
  if (opts.format === 'vmdk') checkVmdkExtents(data.extents, opts.path);
  const size = i['virtual-size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) {
    throw refuse(`virtual size "${String(size)}" is not a positive size`);
  }
  if (size > opts.maxVirtualSizeBytes) throw virtualSizeTooLarge(size, opts.maxVirtualSizeBytes);
  return { virtualSizeBytes: size };
}

/** Every extent of an accepted vmdk is the uploaded file itself. */
function checkVmdkExtents(extents: unknown, path: string): void {
  if (!Array.isArray(extents) || extents.length === 0) throw refuse('vmdk image lists no extents');
  for (const e of extents) {
    const name = (e as { filename?: unknown } | null)?.filename;
    if (name !== path) throw refuse('vmdk images with extents in other files are refused');
  }
}
