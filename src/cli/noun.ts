import type { Command } from 'commander';
import type { AnyObject } from '../api/object.ts';
import type { CliContext } from './context.ts';
import type { Column } from './output.ts';
import { UsageError } from './usage-error.ts';

/** Options commander parsed for one command. */
export type Flags = Record<string, unknown>;

/** What a noun adds to the generic verbs: its create flags, how they become a spec, and its table columns. */
export interface Noun {
  kind: string;
  summary: string;
  /** Kind-specific columns between NAME and REVISION. */
  columns: Column[];
  addCreateFlags(cmd: Command): void;
  /** The spec built from the create flags; UsageError when a needed flag is missing. */
  spec(flags: Flags): Record<string, unknown>;
  /** Write-only body fields beside the spec that flags carry (a VM's secret parameters), with -f too. */
  writeOnly?(flags: Flags): Record<string, unknown>;
  /** Verbs only this noun has (e.g. `node join-token`), added after the generic ones. */
  addCommands?(cmd: Command, ctx: CliContext): void;
}

/** Drops undefined values and objects left empty, so only given flags reach the spec. */
export function defined<T extends Record<string, unknown>>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const inner = defined(v as Record<string, unknown>);
      if (Object.keys(inner).length) out[k] = inner;
    } else out[k] = v;
  }
  return out as T;
}

/** The value of a flag a create needs, or a usage error naming it. */
export function need<T>(flags: Flags, key: string, flag: string): T {
  const v = flags[key];
  if (v === undefined) throw new UsageError(`Missing ${flag} (or give the whole object with -f FILE)`);
  return v as T;
}

/** Reads a nested field for table columns. */
export function at(o: AnyObject, ...path: string[]): unknown {
  let cur: unknown = o;
  for (const p of path) cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[p] : undefined;
  return cur;
}
