import { ApiError } from '../api/errors.ts';
import type { AnyObject } from '../api/object.ts';
import type { CliContext } from './context.ts';

/**
 * `crowd image import URL --name N`: creates the image if needed, asks the
 * server to fetch the URL, and (unless told not to wait) follows the image's
 * status on the watch until the import is ready or failed.
 */
export async function importImage(ctx: CliContext, o: { url: string; name: string; project?: string; sha256?: string; wait: boolean }): Promise<AnyObject> {
  const client = ctx.client();
  const project = o.project ?? 'default';
  try {
    await client.images.get(o.name, { project });
  } catch (e) {
    if (!(e instanceof ApiError && e.code === 'not_found')) throw e;
    await client.images.create({ name: o.name, spec: o.sha256 ? { sha256: o.sha256 } : {} } as never, { project });
  }
  const accepted = await client.http.json<AnyObject>({
    method: 'POST',
    path: `/v1/images/${encodeURIComponent(o.name)}/import`,
    query: { project },
    body: { url: o.url, ...(o.sha256 ? { sha256: o.sha256 } : {}) },
  });
  if (!o.wait) return accepted;
  ctx.warn(`Importing ${o.url} into image "${o.name}" on the server`);
  const ac = new AbortController();
  ctx.io.signal?.addEventListener('abort', () => ac.abort(), { once: true });
  try {
    for await (const ev of client.watch({ kinds: ['image'], project, revision: accepted.revision, signal: ac.signal })) {
      if (ev.type !== 'put' || ev.object.id !== accepted.id) continue;
      const status = ev.object.status as { phase?: string; conditions?: { message?: string }[] };
      if (status.phase === 'ready') return ev.object;
      if (status.phase === 'failed') throw new ApiError('invalid', `Cannot import "${o.url}" into image "${o.name}": ${status.conditions?.[0]?.message ?? 'refused'}`);
    }
  } finally {
    ac.abort();
  }
  throw new ApiError('unavailable', `Cannot follow the import into image "${o.name}": the watch ended`);
}
