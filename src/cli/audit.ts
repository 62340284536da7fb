import type { Command } from 'commander';
import { outputOption } from './command-options.ts';
import type { CliContext } from './context.ts';
import { intFlag } from './flags.ts';
import type { Flags } from './noun.ts';
import { renderTable, renderValue } from './output.ts';

/** `crowd audit [--limit N] [--before ID]`: who changed what, newest first. */
export function addAuditCommand(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('audit')
    .description('the audit log of mutating requests, newest first')
    .option('--limit <n>', 'entries to show (default 100)', intFlag)
    .option('--before <id>', 'entries older than this id (the next page)', intFlag);
  outputOption(cmd).action(async (flags: Flags) => {
    const { items } = await ctx.client().audit({ limit: flags.limit as number | undefined, before: flags.before as number | undefined });
    if (flags.output !== 'table') return ctx.print(renderValue(items, flags.output as 'json' | 'yaml'));
    ctx.print(renderTable(['ID', 'TIME', 'WHO', 'SOURCE', 'METHOD', 'PATH', 'STATUS'], items.map((e) => [e.id, e.time, e.who, e.source, e.method, e.path, e.status])));
  });
}
