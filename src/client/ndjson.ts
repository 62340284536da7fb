import { ApiError } from '../api/errors.ts';

/** Yields one parsed value per line of a newline-delimited JSON byte stream; blank lines are skipped. */
export async function* readNdjson<T>(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<T> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const onAbort = () => void reader.cancel().catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  let buffered = '';
  const parse = (line: string): T => {
    try {
      return JSON.parse(line) as T;
    } catch (e) {
      throw new ApiError('internal', `Cannot read the watch stream: a line is not JSON: ${line.slice(0, 80)}`, { cause: e });
    }
  };
  try {
    for (;;) {
      if (signal?.aborted) return;
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        if (signal?.aborted) return;
        throw e;
      }
      if (chunk.done) break;
      buffered += decoder.decode(chunk.value, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) yield parse(line);
      }
    }
    const rest = (buffered + decoder.decode()).trim();
    if (rest) yield parse(rest);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await reader.cancel().catch(() => {});
  }
}
