import type { ImageStatus } from '../../api/kinds/image.ts';
import type { StoredImage } from './process-image.ts';

const GiB = 1024 ** 3;

/**
 * The status an image record gets once its blob is stored: `format` and
 * `sha256` name the stored blob (what hosts pull and verify); `source*` describe the upload.
 */
export function imageStatus(stored: StoredImage): ImageStatus {
  return {
    phase: 'ready',
    format: stored.storedFormat,
    sha256: stored.sha256,
    sizeBytes: stored.sizeBytes,
    virtualSizeBytes: stored.virtualSizeBytes,
    sourceSha256: stored.sourceSha256,
    sourceFormat: stored.format,
    ...(stored.compression ? { compression: stored.compression } : {}),
  };
}

/** The smallest whole-GiB disk that holds the image, for `spec.minDiskGiB` when the user gave none. */
export function minDiskGiB(stored: Pick<StoredImage, 'virtualSizeBytes'>): number {
  return Math.max(1, Math.ceil(stored.virtualSizeBytes / GiB));
}
