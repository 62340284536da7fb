import type { TSchema } from '@sinclair/typebox';
import type { FastifySchemaCompiler } from 'fastify';
import { ApiError, type ErrorDetail } from '../api/errors.ts';
import { invalidWith, schemaErrors } from '../api/validate.ts';

type Part = 'body' | 'querystring' | 'params' | 'headers' | string;

interface PropSchema {
  type?: string;
}

/**
 * URL parts arrive as strings (arrays when repeated); convert them to the
 * types the schema declares, so `limit=5` is a number and a single `where` is a list.
 * Bodies are never converted.
 */
export function coerceUrlPart(schema: TSchema, data: unknown): Record<string, unknown> {
  const props = (schema as { properties?: Record<string, PropSchema> }).properties ?? {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries((data ?? {}) as Record<string, unknown>)) {
    const type = props[key]?.type;
    if ((type === 'integer' || type === 'number') && typeof value === 'string' && /^-?\d{1,15}$/.test(value)) out[key] = Number(value);
    else if (type === 'array' && typeof value === 'string') out[key] = [value];
    else out[key] = value;
  }
  return out;
}

function urlPartError(part: Part, details: ErrorDetail[]): ApiError {
  const what = part === 'params' ? 'path parameter' : 'query parameter';
  const named = details.map((d) => ({ path: d.path.replace(/^\//, '').split('/')[0] || part, message: d.message }));
  const first = named[0]!;
  return new ApiError('invalid', `Invalid ${what} "${first.path}": ${first.message}`, { details: named });
}

/**
 * Validates every request part with TypeBox's compiled checks instead of
 * ajv: unknown fields are rejected (never silently removed) and body types are
 * never coerced. `$ref`s name schemas shared through `app.addSchema`.
 */
export function typeboxValidatorCompiler(shared: ReadonlyMap<string, TSchema>): FastifySchemaCompiler<TSchema> {
  const resolve = (schema: TSchema): TSchema => {
    const ref = (schema as { $ref?: string }).$ref;
    if (ref === undefined) return schema;
    const found = shared.get(ref.replace(/#$/, ''));
    if (!found) throw new Error(`Cannot compile route schema: unknown $ref "${ref}"`);
    return found;
  };
  return ({ schema, httpPart }) => {
    const target = resolve(schema);
    schemaErrors(target, undefined); // compiles now, not on the first request
    if (httpPart === 'body') {
      return (data: unknown) => {
        const details = schemaErrors(target, data);
        return details.length ? { error: invalidWith('request body', details) } : { value: data };
      };
    }
    return (data: unknown) => {
      const value = coerceUrlPart(target, data);
      const details = schemaErrors(target, value);
      return details.length ? { error: urlPartError(httpPart ?? 'querystring', details) } : { value };
    };
  };
}
