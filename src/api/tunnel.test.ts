import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeData, encodeData, parseAgentFrame, parseServerFrame, replyError } from './tunnel.ts';

test('a binary frame carries its stream id big-endian before the bytes and splits back', () => {
  const frame = encodeData(0x01020304, new Uint8Array([9, 8]));
  assert.deepEqual([...frame], [1, 2, 3, 4, 9, 8]);
  const padded = new Uint8Array([7, ...frame]).subarray(1);
  assert.deepEqual(decodeData(padded), { id: 0x01020304, bytes: new Uint8Array([9, 8]) });
});

test('a binary frame too short or with stream id 0 is not one', () => {
  assert.equal(decodeData(new Uint8Array([0, 0, 1])), undefined);
  assert.equal(decodeData(new Uint8Array([0, 0, 0, 0, 5])), undefined);
});

test('the agent reads requests and ends and nothing else', () => {
  assert.deepEqual(parseServerFrame('{"id":3,"op":"pipe.write","vm":"vm_1","data":"aGk="}'), { id: 3, op: 'pipe.write', vm: 'vm_1', data: 'aGk=' });
  assert.deepEqual(parseServerFrame('{"id":3,"op":"end"}'), { id: 3, op: 'end' });
  for (const text of ['nope', 'null', '[1]', '{"id":0,"op":"reset","vm":"v"}', '{"id":1,"op":"format","vm":"v"}', '{"id":1,"op":"reset"}', '{"id":1,"op":"reset","vm":"v","data":5}'])
    assert.equal(parseServerFrame(text), undefined, text);
});

test('the server reads replies and ends, and refuses an unknown error code', () => {
  assert.deepEqual(parseAgentFrame('{"id":2,"op":"reply","error":{"code":"conflict","message":"busy"}}'), { id: 2, op: 'reply', error: { code: 'conflict', message: 'busy' } });
  assert.deepEqual(parseAgentFrame('{"id":2,"op":"end"}'), { id: 2, op: 'end' });
  for (const text of ['[]', '{"id":2,"op":"reset","vm":"v"}', '{"id":2,"op":"reply","data":1}', '{"id":2,"op":"reply","error":{"code":"boom","message":"x"}}'])
    assert.equal(parseAgentFrame(text), undefined, text);
});

test('a thrown error becomes a reply error, internal unless it names a known code', () => {
  assert.deepEqual(replyError(Object.assign(new Error('gone'), { code: 'not_found' })), { code: 'not_found', message: 'gone' });
  assert.deepEqual(replyError(Object.assign(new Error('disk'), { code: 'EIO' })), { code: 'internal', message: 'disk' });
});
