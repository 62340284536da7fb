import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../api/errors.ts';
import type { AnyObject } from '../../api/object.ts';
import type { WriteMeta } from '../../store/store.ts';
import { redactFor } from '../secrets/private-parameters.ts';
import '../request-context.ts';

/** Longest `X-Crowd-Reason` kept in the history. */
export const maxReasonLength = 1024;

/** The revision of an `If-Match: "N"` header (weak tags and bare numbers accepted); undefined when absent or `*`. */
export function ifMatchRevision(header: string | string[] | undefined): number | undefined {
  if (header === undefined) return undefined;
  const text = (Array.isArray(header) ? header.join(',') : header).trim();
  if (text === '*') return undefined;
  const m = /^(?:W\/)?"?(\d{1,15})"?$/.exec(text);
  if (!m) {
    throw new ApiError('invalid', `Invalid If-Match header "${text.slice(0, 64)}": expected a revision such as "42"`, {
      details: [{ path: 'If-Match', message: 'expected "<revision>"' }],
    });
  }
  return Number(m[1]);
}

function reasonOf(request: FastifyRequest): string | undefined {
  const raw = request.headers['x-crowd-reason'];
  if (raw === undefined) return undefined;
  const text = Array.isArray(raw) ? raw.join(', ') : raw;
  if (text.length > maxReasonLength) {
    throw new ApiError('invalid', `Invalid X-Crowd-Reason header: longer than ${maxReasonLength} characters`, {
      details: [{ path: 'X-Crowd-Reason', message: `at most ${maxReasonLength} characters` }],
    });
  }
  return text === '' ? undefined : text;
}

/** Author, reason and If-Match of a write, from the request. */
export function writeMeta(request: FastifyRequest): WriteMeta {
  const meta: WriteMeta = { author: request.identity?.name ?? 'anonymous' };
  const reason = reasonOf(request);
  if (reason !== undefined) meta.reason = reason;
  const ifRevision = ifMatchRevision(request.headers['if-match']);
  if (ifRevision !== undefined) meta.ifRevision = ifRevision;
  return meta;
}

/** Answers with an object (private parameters masked unless the caller is a node's agent) and its revision as ETag. */
export function sendObject(reply: FastifyReply, obj: AnyObject, status = 200): FastifyReply {
  return reply.code(status).header('etag', `"${obj.revision}"`).send(redactFor(reply.request.identity, obj));
}

/** Says where a stale revision came from (`If-Match` or `/revision`) when the store reports `precondition_failed`. */
export function explainStale(path: string): (e: unknown) => never {
  return (e) => {
    if (e instanceof ApiError && e.code === 'precondition_failed' && !e.details?.length) {
      throw new ApiError(e.code, e.message, { details: [{ path, message: 'the object changed after this revision' }], cause: e });
    }
    throw e;
  };
}
