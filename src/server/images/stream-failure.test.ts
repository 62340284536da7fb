import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError } from '../../api/errors.ts';
import { streamFailure } from './stream-failure.ts';

const errno = (code: string) => Object.assign(new Error(code), { code });

test('a client that went away is a readable error naming how far the transfer got', () => {
  for (const e of [errno('ECONNRESET'), errno('ERR_STREAM_PREMATURE_CLOSE'), new Error('aborted')]) {
    const got = streamFailure(e, 1234) as ApiError;
    assert.equal(got.code, 'invalid');
    assert.equal(got.message, 'Cannot receive image: the transfer stopped after 1234 bytes');
  }
});

test('a full disk is unavailable, ApiErrors pass through and anything else stays as it was', () => {
  assert.equal((streamFailure(errno('ENOSPC'), 0) as ApiError).code, 'unavailable');
  const api = new ApiError('too_large', 'x');
  assert.equal(streamFailure(api, 0), api);
  const other = errno('EIO');
  assert.equal(streamFailure(other, 0), other);
});
