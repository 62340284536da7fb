import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { ApiError } from '../api/errors.ts';
import { coerceUrlPart, typeboxValidatorCompiler } from './validator.ts';

const Query = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1 })), where: Type.Optional(Type.Array(Type.String())), name: Type.Optional(Type.String()) },
  { additionalProperties: false },
);

test('URL parts become the declared numbers and lists; anything else stays as sent', () => {
  assert.deepEqual(coerceUrlPart(Query, { limit: '5', where: 'spec.a=b', name: '7' }), { limit: 5, where: ['spec.a=b'], name: '7' });
  assert.deepEqual(coerceUrlPart(Query, { limit: '5x', where: ['a', 'b'] }), { limit: '5x', where: ['a', 'b'] });
});

test('bodies are validated without coercion, and unknown fields are refused rather than dropped', () => {
  const compile = typeboxValidatorCompiler(new Map());
  const body = Type.Object({ cpus: Type.Integer() }, { additionalProperties: false });
  const check = compile({ schema: body, method: 'POST', url: '/x', httpPart: 'body' }) as (d: unknown) => { value?: unknown; error?: ApiError };
  assert.deepEqual(check({ cpus: 2 }), { value: { cpus: 2 } });
  const wrongType = check({ cpus: '2' }).error!;
  assert.equal(wrongType.code, 'invalid');
  assert.deepEqual(wrongType.details?.map((d) => d.path), ['/cpus']);
  const input = { cpus: 2, extra: true };
  assert.deepEqual(check(input).error?.details?.map((d) => d.path), ['/extra']);
  assert.deepEqual(input, { cpus: 2, extra: true });
});

test('query problems name the parameter, and shared schemas resolve by $ref', () => {
  const Shared = Type.Object({ n: Type.Integer() }, { $id: 'Shared', additionalProperties: false });
  const compile = typeboxValidatorCompiler(new Map([['Shared', Shared]]));
  const query = compile({ schema: Query, method: 'GET', url: '/x', httpPart: 'querystring' }) as (d: unknown) => { error?: ApiError };
  assert.deepEqual(query({ limit: '0', colour: 'red' }).error?.details?.map((d) => d.path).sort(), ['colour', 'limit']);
  const byRef = compile({ schema: Type.Ref(Shared), method: 'POST', url: '/x', httpPart: 'body' }) as (d: unknown) => { error?: ApiError };
  assert.equal(byRef({ n: 1 }).error, undefined);
  assert.deepEqual(byRef({ n: 'one' }).error?.details?.map((d) => d.path), ['/n']);
  assert.throws(() => compile({ schema: { $ref: 'Missing' } as never, method: 'POST', url: '/x', httpPart: 'body' }), /unknown \$ref "Missing"/);
});
