import { ApiError } from '../api/errors.ts';
import { parseFieldFilter } from '../api/field-filter.ts';
import { parseSelector } from '../api/selector.ts';
import type { AnyObject } from '../api/object.ts';
import type { WatchEvent } from '../api/wire.ts';
import { readNdjson } from './ndjson.ts';
import type { Transport } from './transport.ts';

/** What a watch follows: kinds (all when empty), project (`*` or absent: all), filters, and the revision to start after. */
export interface WatchOptions {
  kinds?: readonly string[];
  project?: string;
  selector?: string;
  where?: readonly string[];
  /** Events after this revision; absent: from now. */
  revision?: number;
  signal?: AbortSignal;
}

/** Streams watch events as NDJSON and yields them until the server ends the stream or `signal` aborts. */
export async function* watchEvents<T = AnyObject>(http: Transport, opts: WatchOptions): AsyncGenerator<WatchEvent<T>> {
  if (opts.selector) parseSelector(opts.selector);
  for (const w of opts.where ?? []) parseFieldFilter(w);
  let res: Response;
  try {
    res = await http.open({
      method: 'GET',
      path: '/v1/watch',
      accept: 'application/x-ndjson',
      signal: opts.signal,
      query: {
        kinds: opts.kinds?.length ? opts.kinds.join(',') : undefined,
        project: opts.project,
        selector: opts.selector || undefined,
        where: opts.where?.length ? opts.where : undefined,
        revision: opts.revision,
      },
    });
  } catch (e) {
    if (opts.signal?.aborted) return;
    throw e;
  }
  if (!res.body) throw new ApiError('internal', 'Cannot read the watch stream: the answer has no body');
  yield* readNdjson<WatchEvent<T>>(res.body, opts.signal);
}
