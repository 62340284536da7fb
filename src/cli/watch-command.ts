import type { Command } from 'commander';
import type { AnyObject } from '../api/object.ts';
import type { WatchEvent } from '../api/wire.ts';
import { isKind, kindDef, kinds as allKinds } from '../api/kinds.ts';
import { UsageError } from './usage-error.ts';
import type { CliContext } from './context.ts';
import { intFlag, selectorFlag, whereFlag } from './flags.ts';
import type { Flags, Noun } from './noun.ts';
import { renderValue, type OutputFormat } from './output.ts';
import { outputOption, projectOptions } from './command-options.ts';

/** One watch event as a line (table), a JSON line, or a YAML document. */
export function renderEvent(e: WatchEvent, format: OutputFormat): string | undefined {
  if (format === 'json') return JSON.stringify(e);
  if (format === 'yaml') return `---\n${renderValue(e, 'yaml')}`;
  if (e.type === 'bookmark') return undefined;
  const o = e.object as AnyObject;
  const where = o.project ? ` in project "${o.project}"` : '';
  return `${e.revision}\t${e.type}\t${o.kind} "${o.name}"${where}`;
}

/** `crowd <noun> watch`: prints changes as they happen until interrupted. */
export function addWatchCommand(parent: Command, noun: Noun, ctx: CliContext): void {
  const scoped = kindDef(noun.kind).scope === 'project';
  const cmd = parent
    .command('watch')
    .description(`print changes to ${kindDef(noun.kind).plural} as they happen, until interrupted`)
    .option('-l, --selector <selector>', 'label selector', selectorFlag)
    .option('--where <path=value>', 'equality filter on spec or metadata (repeatable)', whereFlag)
    .option('--revision <n>', 'start after this revision (default: now)', intFlag);
  projectOptions(outputOption(cmd), scoped, true).action(async (flags: Flags) => {
    const res = ctx.client().resource(noun.kind);
    const project = scoped ? (flags.allProjects ? '*' : ((flags.project as string | undefined) ?? 'default')) : undefined;
    const selector = flags.selector as string | undefined;
    const where = flags.where as string[] | undefined;
    const revision = flags.revision as number | undefined;
    for await (const e of res.watch({ project, selector, where, revision, signal: ctx.io.signal })) {
      const line = renderEvent(e, flags.output as OutputFormat);
      if (line !== undefined) ctx.print(line);
    }
  });
}

/** `crowd watch [--kinds vm,network]`: changes to objects of several kinds (all when none given), across projects unless --project. */
export function addGlobalWatchCommand(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('watch')
    .description('print changes to objects of every kind (or --kinds) as they happen, until interrupted')
    .option('--kinds <kinds>', 'comma-separated kinds, e.g. vm,network (default: all)')
    .option('--project <name>', 'only this project (cluster-scoped kinds are always shown)')
    .option('-l, --selector <selector>', 'label selector', selectorFlag)
    .option('--where <path=value>', 'equality filter on spec or metadata (repeatable)', whereFlag)
    .option('--revision <n>', 'start after this revision (default: now)', intFlag);
  outputOption(cmd).action(async (flags: Flags) => {
    const kinds = (flags.kinds as string | undefined)?.split(',').map((k) => k.trim()).filter(Boolean);
    const unknown = kinds?.find((k) => !isKind(k));
    if (unknown !== undefined) throw new UsageError(`Unknown kind "${unknown}" in --kinds: expected ${allKinds.map((k) => k.kind).join(', ')}`);
    const events = ctx.client().watch({
      kinds,
      project: flags.project as string | undefined,
      selector: flags.selector as string | undefined,
      where: flags.where as string[] | undefined,
      revision: flags.revision as number | undefined,
      signal: ctx.io.signal,
    });
    for await (const e of events) {
      const line = renderEvent(e, flags.output as OutputFormat);
      if (line !== undefined) ctx.print(line);
    }
  });
}
