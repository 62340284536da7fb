import { open, rm, stat } from 'node:fs/promises';
import { ApiError } from '../../api/errors.ts';
import type { ImageFormat } from '../../api/kinds/image.ts';
import type { Runner } from '../../base/runner.ts';
import { syncPath, type BlobStore } from './blob-store.ts';
import { decompressFile, type Compression } from './decompress-file.ts';
import { probeBytes, probeFormat, type ProbedFormat } from './format-probe.ts';
import { hashFile } from './hash-file.ts';
import { checkImageInfo } from './image-info-check.ts';
import type { ImageLimits } from './image-limits.ts';
import { checkQcow2Header, virtualSizeTooLarge } from './qcow2-header.ts';
import type { QemuImg } from './qemu-img.ts';
import { checkVmdkHeader } from './vmdk-header.ts';

/** What an accepted image became: the stored blob plus what was learnt about the source. */
export interface StoredImage {
  /** Content hash of the stored blob (what hosts pull and verify). */
  sha256: string;
  sizeBytes: number;
  /** Disks are stored as qcow2, install media as-is. */
  storedFormat: 'qcow2' | 'iso';
  /** The format found inside the upload (after decompression). */
  format: ImageFormat;
  compression?: Compression;
  virtualSizeBytes: number;
  /** Hash and size of the bytes as uploaded (what the user compares with). */
  sourceSha256: string;
  sourceSizeBytes: number;
  /** False when the same blob was already stored. */
  created: boolean;
}

/** What processImage needs from the repository. */
export interface ProcessDeps {
  blobs: BlobStore;
  runner: Runner;
  qemuImg: QemuImg;
  limits: ImageLimits;
}

async function readHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(probeBytes);
    const { bytesRead } = await fh.read(buf, 0, probeBytes, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function refuse(detail: string): ApiError {
  return new ApiError('invalid', `Cannot import image: ${detail}`);
}

/**
 * Turns an uploaded temp file into a stored blob: detects the format from
 * content, decompresses gzip/xz with a cap, keeps ISO as-is, inspects disks
 * with a limited qemu-img, refuses anything that reaches outside the file,
 * and converts every disk to a fresh qcow2. The source and every
 * intermediate file are removed whatever happens.
 */
export async function processImage(
  src: string,
  source: { sha256: string; sizeBytes: number },
  deps: ProcessDeps,
): Promise<StoredImage> {
  const temps = [src];
  try {
    let path = src;
    let head = await readHead(path);
    let probed = probeFormat(head);
    let compression: Compression | undefined;
    if (probed === 'gzip' || probed === 'xz') {
      compression = probed;
      path = deps.blobs.tempPath('unpacked');
      temps.push(path);
      await decompressFile(probed, src, path, deps);
      head = await readHead(path);
      probed = probeFormat(head);
      if (probed === 'gzip' || probed === 'xz') throw refuse('compressed data inside compressed data is refused');
    }
    const common = { sourceSha256: source.sha256, sourceSizeBytes: source.sizeBytes, ...(compression ? { compression } : {}) };
    if (probed === 'iso') {
      const { size } = await stat(path);
      if (size > deps.limits.maxVirtualSizeBytes) throw virtualSizeTooLarge(size, deps.limits.maxVirtualSizeBytes);
      const sha256 = compression ? (await hashFile(path)).hash.digest('hex') : source.sha256;
      const { created } = await deps.blobs.put(path, sha256);
      return { sha256, sizeBytes: size, storedFormat: 'iso', format: 'iso', virtualSizeBytes: size, created, ...common };
    }
    const format = diskFormat(probed);
    if (format === 'qcow2') checkQcow2Header(head, deps.limits);
    if (format === 'vmdk') checkVmdkHeader(head);
    const info = await deps.qemuImg.info(path, format);
    const { virtualSizeBytes } = checkImageInfo(info, { format, path, maxVirtualSizeBytes: deps.limits.maxVirtualSizeBytes });
    if (format !== 'raw') await deps.qemuImg.check(path, format);
    const out = deps.blobs.tempPath('qcow2');
    temps.push(out);
    await deps.qemuImg.convert(path, format, out, virtualSizeBytes + Math.ceil(virtualSizeBytes / 64) + 16 * 1024 * 1024);
    // The disk writes the new file back while it is hashed from the page cache, instead of after.
    const [{ hash, size }] = await Promise.all([hashFile(out), syncPath(out)]);
    const sha256 = hash.digest('hex');
    const { created } = await deps.blobs.put(out, sha256);
    return { sha256, sizeBytes: size, storedFormat: 'qcow2', format, virtualSizeBytes, created, ...common };
  } finally {
    await Promise.all(temps.map((t) => rm(t, { force: true })));
  }
}

function diskFormat(probed: Exclude<ProbedFormat, 'gzip' | 'xz' | 'iso'>): Exclude<ImageFormat, 'iso'> {
  switch (probed) {
    case 'vmdk-descriptor':
      throw refuse('vmdk images with extents in other files are refused');
    case 'qcow2':
    case 'vmdk':
    case 'vdi':
    case 'vhdx':
    case 'raw':
      return probed;
  }
}
