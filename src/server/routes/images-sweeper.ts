import type { AnyObject } from '../../api/object.ts';
import type { Logger } from '../../base/logger.ts';
import type { Store } from '../../store/store.ts';
import type { ImageRepository } from '../images/image-repository.ts';

/** The stored blob an image record names, if any. */
export function blobOf(image: AnyObject): string | undefined {
  return (image.status as { sha256?: string }).sha256;
}

/** Every image record, across projects. */
export async function allImages(store: Store): Promise<{ items: AnyObject[]; revision: number }> {
  const items: AnyObject[] = [];
  let revision = 0;
  let cont: string | undefined;
  do {
    const page = await store.list({ kind: 'image', project: '*', limit: 1000, ...(cont ? { continue: cont } : {}) });
    items.push(...page.items);
    revision ||= page.revision;
    cont = page.continue;
  } while (cont);
  return { items, revision };
}

/** Whether any image record (in any project) still names this blob. */
export async function blobInUse(store: Store, sha256: string): Promise<boolean> {
  const page = await store.list({ kind: 'image', project: '*', where: [{ path: 'status.sha256', value: sha256 }], limit: 1 });
  return page.items.length > 0;
}

/**
 * Keeps the blob store in step with the image records: at start, removes
 * blobs no record names (left by a crash between storing and recording);
 * then, on every image delete, removes its blob unless another record (the
 * same bytes under another name or project) still names it.
 */
export async function sweepImageBlobs(
  deps: { store: Store; repo: ImageRepository; logger: Logger; onSweep?: (sha256: string) => void },
  signal: AbortSignal,
): Promise<void> {
  const { store, repo, logger } = deps;
  const { items, revision } = await allImages(store);
  const removed = await repo.sweep(items.map(blobOf).filter((s): s is string => s !== undefined));
  if (removed.length) logger.info({ removed: removed.length }, 'removed image blobs no record names');
  try {
    for await (const ev of store.watch({ kinds: ['image'], fromRevision: revision }, signal)) {
      if (ev.type !== 'delete') continue;
      const sha = blobOf(ev.object);
      if (!sha || (await blobInUse(store, sha))) continue;
      await repo.remove(sha);
      deps.onSweep?.(sha);
    }
  } catch (err) {
    if (!signal.aborted) logger.error({ err: err instanceof Error ? err.message : String(err) }, 'image blob sweeper stopped');
  }
}
