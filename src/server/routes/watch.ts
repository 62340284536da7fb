import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError, invalid } from '../../api/errors.ts';
import { parseFieldFilter } from '../../api/field-filter.ts';
import { isKind, kinds } from '../../api/kinds.ts';
import { DnsLabel } from '../../api/object.ts';
import { parseSelector } from '../../api/selector.ts';
import { WatchEvent } from '../../api/wire.ts';
import type { Authorizer } from '../../auth/authorizer.ts';
import type { Clock } from '../../base/clock.ts';
import type { Logger } from '../../base/logger.ts';
import type { Store, WatchQuery } from '../../store/store.ts';
import type { Gauge } from 'prom-client';
import { readsPrivate, redactObject } from '../secrets/private-parameters.ts';
import { selectorParam, whereParam, withErrors } from './route-schemas.ts';

export const WatchParams = Type.Object(
  {
    kinds: Type.Optional(Type.String({ maxLength: 512, description: 'comma-separated kinds (default: all)' })),
    project: Type.Optional(Type.Union([DnsLabel, Type.Literal('*')], { description: 'a project, or "*"/absent for all' })),
    selector: selectorParam,
    where: whereParam,
    revision: Type.Optional(Type.Integer({ minimum: 0, description: 'deliver changes after this revision (default: now)' })),
  },
  { additionalProperties: false },
);

export interface WatchDeps {
  store: Store;
  authorizer: Authorizer;
  clock: Clock;
  logger: Logger;
  /** How often a quiet stream gets a bookmark. */
  bookmarkMs: number;
  /** Aborts every stream when the server shuts down. */
  shutdown: AbortSignal;
  watchers: Gauge;
}

function parseKinds(text: string | undefined): string[] {
  if (text === undefined || text.trim() === '') return [];
  const list = text.split(',').map((k) => k.trim());
  const unknown = list.find((k) => !isKind(k));
  if (unknown !== undefined) throw invalid('kinds', `unknown kind "${unknown.slice(0, 64)}": expected ${kinds.map((k) => k.kind).join(', ')}`);
  return [...new Set(list)];
}

function lastEventId(request: FastifyRequest): number | undefined {
  const raw = request.headers['last-event-id'];
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw)) throw invalid('Last-Event-ID', 'expected a revision');
  return Number(raw);
}

/** How one stream frames events: SSE (the id resumes) or one JSON document per line. */
interface Framing {
  contentType: string;
  frame(json: string, revision: number): string;
}
const sse: Framing = { contentType: 'text/event-stream; charset=utf-8', frame: (json, rev) => `id: ${rev}\ndata: ${json}\n\n` };
const ndjson: Framing = { contentType: 'application/x-ndjson; charset=utf-8', frame: (json) => `${json}\n` };

const crlf = Buffer.from('\r\n');

/** Where one stream's bytes go, and whether they must arrive framed as HTTP/1.1 chunks. */
interface Sink {
  chunked: boolean;
  /** Writes; a promise only when the socket pushes back, so a watcher that keeps up costs no extra tick. */
  send(bytes: Buffer): Promise<unknown> | undefined;
}

/**
 * A chunked response on a real socket (headers already flushed) gets its
 * events pre-framed as chunks, straight on the socket: one shared Buffer and
 * one write per watcher, where `res.write` sends four pieces through a corked
 * tick. Anything else (HTTP/1.0, injected requests) writes through `res`.
 */
function sinkOf(res: ServerResponse, signal: AbortSignal): Sink {
  const socket = res.socket;
  if (res.chunkedEncoding && socket instanceof Socket) {
    return { chunked: true, send: (b) => (socket.write(b) ? undefined : once(socket, 'drain', { signal })) };
  }
  return { chunked: false, send: (b) => (res.write(b) ? undefined : once(res, 'drain', { signal })) };
}

/** One event's bytes for a stream: framed text, wrapped as an HTTP/1.1 chunk when the stream is chunked. */
function encode(text: string, chunked: boolean): Buffer {
  const body = Buffer.from(text);
  return chunked ? Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, crlf]) : body;
}

/**
 * `GET /v1/watch`: every change after a revision as SSE or NDJSON.
 * Problems (unknown kind, future or compacted revision) are answered as a
 * normal JSON error before the stream starts. One event is serialized and
 * encoded once and the same bytes go to every watcher (the store matches
 * filters once per distinct filter), so a write costs each watcher only a
 * socket write.
 */
export function registerWatchRoute(app: FastifyInstance, deps: WatchDeps): void {
  const { store, authorizer, clock, logger } = deps;
  // One event object reaches every watcher; each framing (SSE or NDJSON, chunked or not) encodes it once.
  const framed = new Map<string, WeakMap<object, Buffer>>();
  // Masked copies of events, shared by every watcher that may not read private values.
  const masked = new WeakMap<object, WatchEvent>();
  const maskedOf = (ev: WatchEvent): WatchEvent => {
    if (ev.type === 'bookmark') return ev;
    let m = masked.get(ev);
    if (m === undefined) {
      const object = redactObject(ev.object);
      m = object === ev.object ? ev : { ...ev, object };
      masked.set(ev, m);
    }
    return m;
  };
  const frameOf = (framing: Framing, chunked: boolean, ev: WatchEvent): Buffer => {
    const key = `${framing.contentType}${chunked ? ';chunked' : ''}`;
    let cache = framed.get(key);
    if (cache === undefined) framed.set(key, (cache = new WeakMap()));
    let s = cache.get(ev);
    if (s === undefined) {
      s = encode(framing.frame(JSON.stringify(ev), ev.revision), chunked);
      cache.set(ev, s);
    }
    return s;
  };

  app.get<{ Querystring: Static<typeof WatchParams> }>(
    '/v1/watch',
    {
      schema: {
        tags: ['watch'],
        summary: 'Stream changes after a revision (text/event-stream or application/x-ndjson)',
        querystring: WatchParams,
        response: withErrors({
          200: {
            description: 'one event per SSE message (id: the revision) or per NDJSON line',
            content: { 'text/event-stream': { schema: WatchEvent }, 'application/x-ndjson': { schema: WatchEvent } },
          } as unknown as TSchema,
        }),
      },
    },
    async (request, reply) => {
      const q = request.query;
      const watched = parseKinds(q.kinds);
      const project = q.project === '*' ? undefined : q.project;
      const identity = request.identity!;
      const shown = readsPrivate(identity) ? (ev: WatchEvent) => ev : maskedOf;
      for (const resource of watched.length ? watched : kinds.map((k) => k.kind)) {
        authorizer.authorize(identity, { verb: 'read', resource, project });
      }
      const query: WatchQuery = {
        kinds: watched,
        project,
        selector: q.selector === undefined ? undefined : parseSelector(q.selector),
        where: q.where?.map(parseFieldFilter),
        fromRevision: 0,
      };
      const [current, compacted] = await Promise.all([store.revision(), store.compactedRevision()]);
      const from = lastEventId(request) ?? q.revision ?? current;
      if (from > current) throw invalid('revision', `revision ${from} is in the future: the store is at ${current}`);
      if (from < compacted) {
        throw new ApiError('gone', `Cannot watch from revision ${from}: history up to ${compacted} was compacted; list again and watch from the list's revision`, {
          details: [{ path: 'revision', message: `compacted up to ${compacted}` }],
        });
      }
      query.fromRevision = from;

      const framing = (request.headers.accept ?? '').includes('text/event-stream') ? sse : ndjson;
      const abort = new AbortController();
      const stop = () => abort.abort();
      const res = reply.raw;
      res.on('close', stop);
      deps.shutdown.addEventListener('abort', stop, { once: true });
      reply.hijack();
      res.writeHead(200, { 'content-type': framing.contentType, 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
      res.flushHeaders();
      const sink = sinkOf(res, abort.signal);
      deps.watchers.inc();
      let last = from;
      const bookmark = () => sink.send(encode(framing.frame(JSON.stringify({ type: 'bookmark', revision: last }), last), sink.chunked));
      const bookmarks = (async () => {
        while (!abort.signal.aborted) {
          await clock.sleep(deps.bookmarkMs, abort.signal);
          await bookmark();
        }
      })().catch(() => {});
      try {
        await bookmark();
        for await (const ev of store.watch(query, abort.signal)) {
          last = Math.max(last, ev.revision);
          const pushedBack = sink.send(frameOf(framing, sink.chunked, shown(ev)));
          if (pushedBack) await pushedBack;
        }
      } catch (e) {
        if (!abort.signal.aborted) {
          const api = e instanceof ApiError ? e : new ApiError('internal', 'Watch failed: see the server log');
          if (!(e instanceof ApiError)) logger.error({ err: e }, 'watch failed');
          res.write(framing.frame(JSON.stringify(api.toBody()), last));
        }
      } finally {
        abort.abort();
        deps.shutdown.removeEventListener('abort', stop);
        deps.watchers.dec();
        await bookmarks;
        res.end();
      }
    },
  );
}
