import { errorCodes, type ErrorCode } from '../api/errors.ts';

/**
 * The agent's side of the tunnel wire (the server's copy, with the diagram,
 * is src/server/tunnel/tunnel-frames.ts; neither side may import the other):
 * text `{id, op, vm, data?}` requests in, one `{id, op: "reply", data?,
 * error?}` out per request, binary `[u32 stream id][bytes]` console bytes
 * and text `{id, op: "end"}` both ways.
 */
export type TunnelOp = 'reboot' | 'reset' | 'console.log' | 'console.attach' | 'pipe.read' | 'pipe.write';

const ops = new Set<string>(['reboot', 'reset', 'console.log', 'console.attach', 'pipe.read', 'pipe.write']);

/** What the agent accepts from the server as a text frame. */
export type ServerFrame = { id: number; op: TunnelOp; vm: string; data?: string } | { id: number; op: 'end' };

/** An answer to one request. */
export interface TunnelReply {
  id: number;
  op: 'reply';
  data?: string;
  error?: { code: ErrorCode; message: string };
}

const isId = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0 && (v as number) <= 0xffffffff;

/** Parses a server text frame; undefined when it is not one. */
export function parseServerFrame(text: string): ServerFrame | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object') return undefined;
  const f = v as Record<string, unknown>;
  if (!isId(f.id)) return undefined;
  if (f.op === 'end') return { id: f.id, op: 'end' };
  if (typeof f.op !== 'string' || !ops.has(f.op) || typeof f.vm !== 'string' || (f.data !== undefined && typeof f.data !== 'string')) return undefined;
  return { id: f.id, op: f.op as TunnelOp, vm: f.vm, ...(f.data !== undefined ? { data: f.data } : {}) };
}

/** The error part of a reply, from whatever a handler threw. */
export function replyError(e: unknown): { code: ErrorCode; message: string } {
  const code = (e as { code?: unknown }).code;
  const message = e instanceof Error ? e.message : String(e);
  return { code: errorCodes.includes(code as ErrorCode) ? (code as ErrorCode) : 'internal', message };
}

/** A binary frame carrying console bytes of one stream. */
export function encodeData(id: number, bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + bytes.length);
  out.writeUInt32BE(id, 0);
  out.set(bytes, 4);
  return out;
}

/** Splits a binary frame; undefined when it is too short to carry a stream id. */
export function decodeData(frame: Buffer): { id: number; bytes: Buffer } | undefined {
  if (frame.length < 4) return undefined;
  const id = frame.readUInt32BE(0);
  return isId(id) ? { id, bytes: frame.subarray(4) } : undefined;
}
