import { errorCodes, type ErrorCode } from '../../api/errors.ts';

/**
 * The wire of the agent tunnel (one WebSocket the agent opens to the server):
 *
 *   server ─text {id, op, vm, data?}──────────► agent    a request
 *   server ◄─text {id, op: "reply", data?, error?}─ agent    its one answer
 *   either ─binary [u32 stream id][bytes]─────► other    console bytes of stream `id`
 *   either ─text {id, op: "end"}──────────────► other    stream `id` is over
 *
 * A console stream's id is the id of the `console.attach` request that opened
 * it. `data` is base64. src/agent/tunnel-frames.ts is the agent's copy of
 * these shapes (the agent may not import the server).
 */
export type TunnelOp = 'reboot' | 'reset' | 'console.log' | 'console.attach' | 'pipe.read' | 'pipe.write';

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

/** What the server accepts from an agent as a text frame. */
export type AgentFrame = TunnelReply | TunnelEnd;

const maxId = 0xffffffff;
const isId = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0 && (v as number) <= maxId;

/** Parses an agent's text frame; undefined when it is not one (the caller drops the tunnel). */
export function parseAgentFrame(text: string): AgentFrame | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const f = v as Record<string, unknown>;
  if (!isId(f.id)) return undefined;
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
