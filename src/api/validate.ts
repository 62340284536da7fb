import { FormatRegistry, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ApiError, type ErrorDetail } from './errors.ts';

const dateTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => dateTime.test(v) && !Number.isNaN(Date.parse(v)));

const cache = new WeakMap<TSchema, TypeCheck<TSchema>>();

function checker(schema: TSchema): TypeCheck<TSchema> {
  let c = cache.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    cache.set(schema, c);
  }
  return c;
}

/** The problems of a value against a schema, as JSON-pointer paths under `base`; at most ten. */
export function schemaErrors(schema: TSchema, value: unknown, base = ''): ErrorDetail[] {
  const c = checker(schema);
  if (c.Check(value)) return [];
  const out: ErrorDetail[] = [];
  const seen = new Set<string>();
  for (const e of c.Errors(value)) {
    const path = base + e.path || '/';
    // A union reports each failed branch; one line per path is enough.
    if (seen.has(path)) continue;
    seen.add(path);
    out.push({ path, message: e.message });
    if (out.length >= 10) break;
  }
  return out;
}

/** Throws `invalid` listing every problem of the value. */
export function assertValid(schema: TSchema, value: unknown, what: string, base = ''): void {
  const details = schemaErrors(schema, value, base);
  if (details.length) throw invalidWith(what, details);
}

export function invalidWith(what: string, details: ErrorDetail[]): ApiError {
  const first = details[0]!;
  return new ApiError('invalid', `Invalid ${what}: ${first.path}: ${first.message}`, { details });
}
