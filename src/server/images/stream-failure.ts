import { ApiError } from '../../api/errors.ts';

const cutShort = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ABORT_ERR']);
const outOfSpace = new Set(['ENOSPC', 'EDQUOT']);

/**
 * Names what went wrong while receiving a body: a client that went away, or a
 * full disk, become errors users can read; ApiErrors pass through; anything
 * else stays internal.
 */
export function streamFailure(e: unknown, receivedBytes: number): unknown {
  if (e instanceof ApiError) return e;
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if ((code && cutShort.has(code)) || (e as Error | null)?.message === 'aborted') {
    return new ApiError('invalid', `Cannot receive image: the transfer stopped after ${receivedBytes} bytes`, { cause: e });
  }
  if (code && outOfSpace.has(code)) {
    return new ApiError('unavailable', 'Cannot store image: the server is out of disk space', { cause: e });
  }
  return e;
}
