import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readNdjson } from './ndjson.ts';

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const s of chunks) c.enqueue(enc.encode(s));
      c.close();
    },
  });
}

test('lines split across chunks are joined before parsing', async () => {
  const out: unknown[] = [];
  for await (const v of readNdjson(streamOf(['{"a":', '1}\n\n{"b"', ':2}\n{"c":3}']))) out.push(v);
  assert.deepEqual(out, [{ a: 1 }, { b: 2 }, { c: 3 }]);
});

test('a line that is not JSON ends the stream with an internal error', async () => {
  await assert.rejects(
    async () => {
      for await (const _ of readNdjson(streamOf(['{"a":1}\nnot json\n'])));
    },
    (e: Error & { code?: string }) => e.code === 'internal' && /not JSON/.test(e.message),
  );
});

test('aborting the signal ends an open stream without an error', async () => {
  const ac = new AbortController();
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new TextEncoder().encode('{"n":1}\n'));
    },
  });
  const out: unknown[] = [];
  for await (const v of readNdjson(body, ac.signal)) {
    out.push(v);
    ac.abort();
  }
  assert.deepEqual(out, [{ n: 1 }]);
});
