import { errorCodes, type ErrorCode } from './errors.ts';

/**
 * The wire of the agent tunnel (one WebSocket the agent opens to the server):
 *
 *   server ─text {id, op, vm, data?}──────────► agent    a request
 *   server ◄─text {id, op: "reply", data?, error?}─ agent    its one answer
 *   either ─binary [u32 stream id][bytes]─────► other    console bytes of stream `id`
 *   either ─text {id, op: "end"}──────────────► other    stream `id` is over
 *
 * A console stream's id is the id of the `console.attach` request that opened
 * it. `data` is base64. Both ends (src/server/tunnel, src/agent) read and
 * write these shapes through this file only.
 */
export type TunnelOp = 'reboot' | 'reset' | 'console.log' | 'console.attach' | 'pipe.read' | 'pipe.write' | 'secrets.put';

const ops = new Set<string>(['reboot', 'reset', 'console.log', 'console.attach', 'pipe.read', 'pipe.write', 'secrets.put']);

/** A request from the server. */
export interface TunnelRequest {
  id: number;
  op: TunnelOp;
  /** The VM's id, as the driver knows it. */
  vm: string;
  data?: string;
}

/** The agent's answer to one request. */
export interface TunnelReply {
  id: number;
  op: 'reply';
  data?: string;
  error?: { code: ErrorCode; message: string };
}

/** Either side: a console stream ended. */
export interface TunnelEnd {
  id: number;
  op: 'end';
}

/** What the agent accepts from the server as a text frame. */
export type ServerFrame = TunnelRequest | TunnelEnd;

/** What the server accepts from an agent as a text frame. */
export type AgentFrame = TunnelReply | TunnelEnd;

const maxId = 0xffffffff;
const isId = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0 && (v as number) <= maxId;

/** The fields of a JSON object text; undefined when the text is not one. */
function objectOf(text: string): Record<string, unknown> | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  return v === null || typeof v !== 'object' || Array.isArray(v) ? undefined : (v as Record<string, unknown>);
}

/** Parses a server text frame on the agent; undefined when it is not one (the agent drops it). */
export function parseServerFrame(text: string): ServerFrame | undefined {
  const f = objectOf(text);
  if (!f || !isId(f.id)) return undefined;
  if (f.op === 'end') return { id: f.id, op: 'end' };
  if (typeof f.op !== 'string' || !ops.has(f.op) || typeof f.vm !== 'string' || (f.data !== undefined && typeof f.data !== 'string')) return undefined;
  return { id: f.id, op: f.op as TunnelOp, vm: f.vm, ...(f.data !== undefined ? { data: f.data } : {}) };
}

/** Parses an agent's text frame on the server; undefined when it is not one (the server drops the tunnel). */
export function parseAgentFrame(text: string): AgentFrame | undefined {
  const f = objectOf(text);
  if (!f || !isId(f.id)) return undefined;
  if (f.op === 'end') return { id: f.id, op: 'end' };
  if (f.op !== 'reply') return undefined;
  if (f.data !== undefined && typeof f.data !== 'string') return undefined;
  const reply: TunnelReply = { id: f.id, op: 'reply', ...(f.data !== undefined ? { data: f.data } : {}) };
  if (f.error !== undefined) {
    const e = f.error as { code?: unknown; message?: unknown } | null;
    if (!e || typeof e.message !== 'string' || !errorCodes.includes(e.code as ErrorCode)) return undefined;
    reply.error = { code: e.code as ErrorCode, message: e.message.slice(0, 4000) };
  }
  return reply;
}

/** The error part of a reply, from whatever an agent's handler threw. */
export function replyError(e: unknown): { code: ErrorCode; message: string } {
  const code = (e as { code?: unknown }).code;
  const message = e instanceof Error ? e.message : String(e);
  return { code: errorCodes.includes(code as ErrorCode) ? (code as ErrorCode) : 'internal', message };
}

/** A binary frame carrying console bytes of one stream. */
export function encodeData(id: number, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, id);
  out.set(bytes, 4);
  return out;
}

/** Splits a binary frame; undefined when it is too short to carry a stream id. */
export function decodeData(frame: Uint8Array): { id: number; bytes: Uint8Array } | undefined {
  if (frame.length < 4) return undefined;
  const id = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(0);
  return isId(id) ? { id, bytes: frame.subarray(4) } : undefined;
}
