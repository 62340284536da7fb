import { ApiError } from '../../api/errors.ts';

/** The part of an image record quota accounting reads. */
export interface ImageUsageRecord {
  project: string;
  status?: { sha256?: string; sizeBytes?: number };
}

/**
 * Bytes of image storage each project uses: each distinct blob counts once
 * per project (two records of the same bytes in one project are one blob).
 */
export function projectUsage(images: Iterable<ImageUsageRecord>): Map<string, number> {
  const seen = new Map<string, Set<string>>();
  const usage = new Map<string, number>();
  for (const img of images) {
    const sha = img.status?.sha256;
    const size = img.status?.sizeBytes;
    if (!sha || size === undefined) continue;
    const blobs = seen.get(img.project) ?? new Set<string>();
    seen.set(img.project, blobs);
    if (blobs.has(sha)) continue;
    blobs.add(sha);
    usage.set(img.project, (usage.get(img.project) ?? 0) + size);
  }
  return usage;
}

/** Refuses adding `addBytes` to a project already using `usedBytes` when that passes its quota. */
export function checkQuota(opts: { project: string; usedBytes: number; addBytes: number; quotaBytes: number }): void {
  if (opts.usedBytes + opts.addBytes <= opts.quotaBytes) return;
  throw new ApiError(
    'too_large',
    `Cannot store image in project "${opts.project}": ${opts.usedBytes + opts.addBytes} bytes would exceed its quota of ${opts.quotaBytes} bytes`,
  );
}
