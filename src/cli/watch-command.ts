import type { Command } from 'commander';
import type { AnyObject } from '../api/object.ts';
import type { WatchEvent } from '../api/wire.ts';
import { kindDef } from '../api/kinds.ts';
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
