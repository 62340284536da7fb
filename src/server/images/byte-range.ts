import { ApiError } from '../../api/errors.ts';

/** An inclusive byte range of a blob, as HTTP `Range` and `Content-Range` count it. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a single-range `Range: bytes=…` header against a blob of `size`
 * bytes (`a-b`, `a-`, `-n`); undefined means the whole blob. Multiple ranges
 * are refused: downloads and host pulls resume with one range.
 */
export function parseByteRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined || header === '') return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) throw badRange(header, size);
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) throw badRange(header, size);
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) throw badRange(header, size);
  return { start, end };
}

/** The `Content-Range` value for a range of a blob. */
export function contentRange(range: ByteRange, size: number): string {
  return `bytes ${range.start}-${range.end}/${size}`;
}

function badRange(header: string, size: number): ApiError {
  return new ApiError('invalid', `Cannot read range "${header}": the image has ${size} bytes`, {
    details: [{ path: 'Range', message: `satisfiable ranges lie within 0-${size - 1}` }],
  });
}
