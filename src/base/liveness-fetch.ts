/** How long a request may wait for its answer, and a stream for its next chunk. */
export interface Liveness {
  requestMs: number;
  idleMs: number;
}

/**
 * A fetch that notices a dead link: a request gives up after `requestMs`
 * without response headers, and a streamed body (a watch: the server sends
 * bookmarks more often than `idleMs`) after `idleMs` without a chunk. Without
 * it, a connection caught in a network cut waits for TCP's retransmission
 * backoff (up to two minutes between tries) long after the link is back.
 */
export function livenessFetch(inner: typeof fetch, o: Liveness): typeof fetch {
  return async (input, init) => {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error(`no answer within ${o.requestMs} ms`)), o.requestMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, ac.signal]) : ac.signal;
    try {
      const res = await inner(input, { ...init, signal });
      if (!res.body || !res.headers.get('content-type')?.includes('ndjson')) return res;
      const idle = setTimeout(() => ac.abort(new Error(`stream quiet for ${o.idleMs} ms`)), o.idleMs).unref();
      signal.addEventListener('abort', () => clearTimeout(idle), { once: true });
      const body = res.body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, c) {
            idle.refresh();
            c.enqueue(chunk);
          },
          flush: () => clearTimeout(idle),
        }),
      );
      return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    } finally {
      clearTimeout(timer);
    }
  };
}
