import { InvalidArgumentError } from 'commander';
import { ApiError } from '../api/errors.ts';
import { parseFieldFilter } from '../api/field-filter.ts';
import { parseSelector } from '../api/selector.ts';
import { UsageError } from './usage-error.ts';

/** Commander reducer for repeatable options: `--x a --x b` gives ['a', 'b']. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A positive or zero integer option. */
export function intFlag(value: string): number {
  if (!/^\d{1,12}$/.test(value)) throw new InvalidArgumentError(`"${value}" is not a whole number.`);
  return Number(value);
}

const units: Record<string, number> = { '': 1, m: 1, mi: 1, mib: 1, mb: 1, g: 1024, gi: 1024, gib: 1024, gb: 1024, t: 1024 * 1024, ti: 1024 * 1024, tib: 1024 * 1024 };

/** A memory size in MiB: `2048`, `512MiB`, `4G`, `4GiB`. */
export function mebibytesFlag(value: string): number {
  const m = /^(\d{1,12})\s*([a-z]*)$/i.exec(value.trim());
  const factor = m ? units[m[2]!.toLowerCase()] : undefined;
  if (!m || factor === undefined) throw new InvalidArgumentError(`"${value}" is not a size in MiB (e.g. 2048, 512MiB, 4GiB).`);
  return Number(m[1]) * factor;
}

/** Repeatable `key=value` options, e.g. labels. */
export function keyValueFlag(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`"${value}" is not key=value.`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

/** An option holding a JSON object, e.g. `--metadata-json '{"team":"infra"}'`. */
export function jsonObjectFlag(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (e) {
    throw new InvalidArgumentError(`not valid JSON: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidArgumentError('expected a JSON object.');
  return parsed as Record<string, unknown>;
}

function asUsage(e: unknown): never {
  if (e instanceof ApiError) throw new InvalidArgumentError(e.message);
  throw e;
}

/** A label selector, parsed here so a bad one is a usage error and nothing is sent. */
export function selectorFlag(value: string): string {
  try {
    parseSelector(value);
  } catch (e) {
    asUsage(e);
  }
  return value;
}

/** A repeatable `--where path=value` filter, parsed here so a bad one is a usage error. */
export function whereFlag(value: string, previous: string[] | undefined): string[] {
  try {
    parseFieldFilter(value);
  } catch (e) {
    asUsage(e);
  }
  return collect(value, previous);
}

/** One of a closed set of words. */
export function choiceFlag<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`"${value}" is not one of ${choices.join(', ')}.`);
    return value as T;
  };
}

/** `min-max` as two whole numbers. */
export function parseRange(text: string): { min: number; max: number } {
  const m = /^(\d{1,12})-(\d{1,12})$/.exec(text);
  if (!m) throw new UsageError(`Invalid range "${text}": expected min-max, e.g. 1-8`);
  return { min: Number(m[1]), max: Number(m[2]) };
}
