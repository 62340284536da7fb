import type { Command } from 'commander';
import { kindDef } from '../api/kinds.ts';
import type { AnyObject } from '../api/object.ts';
import type { ResourceClient } from '../client/resource-client.ts';
import type { CliContext } from './context.ts';
import { documentError, parseDocuments, withoutReadOnly } from './documents.ts';
import { addEditCommand } from './edit.ts';
import { intFlag, jsonObjectFlag, keyValueFlag, selectorFlag, whereFlag } from './flags.ts';
import type { Flags, Noun } from './noun.ts';
import { columnsOf, label, outputOption, projectOf, projectOptions } from './command-options.ts';
import { renderChanges, renderObjects, renderTable, renderValue, type OutputFormat } from './output.ts';
import { UsageError } from './usage-error.ts';
import { addWatchCommand } from './watch-command.ts';

function printObject(ctx: CliContext, noun: Noun, obj: AnyObject, format: OutputFormat, message?: string): void {
  if (format !== 'table') ctx.print(renderValue(obj, format));
  else ctx.print(message ?? renderObjects([obj], format, columnsOf(noun, false)));
}

/** The POST body of `create`: from `-f FILE`, else from the noun's flags; then --label, --metadata-json and write-only fields on top. */
async function createBody(ctx: CliContext, noun: Noun, name: string | undefined, flags: Flags): Promise<Record<string, unknown>> {
  let body: Record<string, unknown>;
  if (flags.file !== undefined) {
    const source = flags.file as string;
    const docs = parseDocuments(await ctx.readInput(source), source);
    if (docs.length !== 1) throw new UsageError(`Cannot create from "${source}": expected one document, found ${docs.length} (use "crowd apply -f" for several)`);
    const { index, doc } = docs[0]!;
    if (doc.kind !== undefined && doc.kind !== noun.kind)
      throw documentError(source, index, [{ path: '/kind', message: `is "${String(doc.kind)}", expected "${noun.kind}"` }]);
    body = withoutReadOnly(doc);
  } else {
    body = { spec: noun.spec(flags) };
  }
  if (name !== undefined) body.name = name;
  if (body.name === undefined) throw new UsageError(`Missing the name of the ${noun.kind} to create`);
  if (flags.label) body.labels = { ...(body.labels as Record<string, string> | undefined), ...(flags.label as Record<string, string>) };
  if (flags.metadataJson) body.metadata = flags.metadataJson;
  Object.assign(body, noun.writeOnly?.(flags));
  return body;
}

/** `crowd <noun> list|get|create|edit|delete|history|diff|rollback|watch`: the generic verbs, once for every noun. */
export function addNounCommands(program: Command, noun: Noun, ctx: CliContext): void {
  const def = kindDef(noun.kind);
  const scoped = def.scope === 'project';
  const res = (): ResourceClient => ctx.client().resource(noun.kind);
  const cmd = program.command(noun.kind).description(noun.summary);

  const list = cmd
    .command('list')
    .alias('ls')
    .description(`list ${def.plural}`)
    .option('-l, --selector <selector>', 'label selector, e.g. "env=prod,tier in (web,api)"', selectorFlag)
    .option('--where <path=value>', 'equality filter on spec or metadata, e.g. spec.image=debian-12 (repeatable)', whereFlag);
  projectOptions(outputOption(list), scoped, true).action(async (flags: Flags) => {
    const items: AnyObject[] = [];
    for await (const o of res().listAll({ project: projectOf(flags), selector: flags.selector as string | undefined, where: flags.where as string[] | undefined }))
      items.push(o);
    ctx.print(renderObjects(items, flags.output as OutputFormat, columnsOf(noun, !!flags.allProjects)));
  });

  const get = cmd.command('get').description(`show one ${noun.kind}`).argument('<name>', 'name or id').option('--revision <n>', 'as it was at this revision', intFlag);
  projectOptions(outputOption(get), scoped).action(async (name: string, flags: Flags) => {
    const obj = await res().get(name, { project: projectOf(flags), revision: flags.revision as number | undefined });
    printObject(ctx, noun, obj, flags.output as OutputFormat);
  });

  const create = cmd
    .command('create')
    .description(`create a ${noun.kind} from flags or a file`)
    .argument('[name]', 'a DNS label (taken from the file with -f)')
    .option('-f, --file <file>', 'YAML or JSON of the object ("-" for stdin)')
    .option('--label <key=value>', 'a label (repeatable)', keyValueFlag)
    .option('--metadata-json <json>', 'opaque metadata, a JSON object', jsonObjectFlag)
    .option('--reason <text>', 'why, kept in the history');
  noun.addCreateFlags(create);
  projectOptions(outputOption(create), scoped).action(async (name: string | undefined, flags: Flags) => {
    const body = await createBody(ctx, noun, name, flags);
    const obj = await res().create(body, { project: projectOf(flags), reason: flags.reason as string | undefined });
    printObject(ctx, noun, obj, flags.output as OutputFormat, `${label(noun.kind, obj.name)} created (revision ${obj.revision})`);
  });

  addEditCommand(cmd, noun, ctx);

  const del = cmd.command('delete').alias('rm').description(`delete a ${noun.kind}`).argument('<name>', 'name or id').option('--reason <text>', 'why, kept in the history');
  projectOptions(del, scoped).action(async (name: string, flags: Flags) => {
    const last = await res().delete(name, { project: projectOf(flags), reason: flags.reason as string | undefined });
    ctx.print(`${label(noun.kind, last.name)} deleted`);
  });

  const history = cmd.command('history').description(`versions of a ${noun.kind}, newest first`).argument('<name>', 'name or id');
  projectOptions(outputOption(history), scoped).action(async (name: string, flags: Flags) => {
    const r = res();
    const entries = [];
    let next: string | undefined;
    do {
      const page = await r.history(name, { project: projectOf(flags), continue: next });
      entries.push(...page.items);
      next = page.continue;
    } while (next);
    if (flags.output === 'table')
      ctx.print(renderTable(['REVISION', 'OP', 'AUTHOR', 'TIME', 'REASON'], entries.map((e) => [e.revision, e.op, e.author, e.time, e.reason])));
    else ctx.print(renderValue(entries, flags.output as 'json' | 'yaml'));
  });

  const diff = cmd
    .command('diff')
    .description(`changes of a ${noun.kind} between two revisions`)
    .argument('<name>', 'name or id')
    .requiredOption('--from <n>', 'older revision', intFlag)
    .option('--to <m>', 'newer revision (default: the current one)', intFlag);
  projectOptions(outputOption(diff), scoped).action(async (name: string, flags: Flags) => {
    const d = await res().diff(name, { project: projectOf(flags), from: flags.from as number, to: flags.to as number | undefined });
    if (flags.output === 'table') ctx.print(`${label(noun.kind, name)}: revision ${d.from} -> ${d.to}\n${renderChanges(d.changes)}`);
    else ctx.print(renderValue(d, flags.output as 'json' | 'yaml'));
  });

  const rollback = cmd
    .command('rollback')
    .description(`restore the labels, metadata and spec a ${noun.kind} had at a revision (as a new revision)`)
    .argument('<name>', 'name or id')
    .requiredOption('--to <n>', 'the revision to restore', intFlag)
    .option('--reason <text>', 'why, kept in the history');
  projectOptions(outputOption(rollback), scoped).action(async (name: string, flags: Flags) => {
    const obj = await res().rollback(name, { project: projectOf(flags), revision: flags.to as number, reason: flags.reason as string | undefined });
    printObject(ctx, noun, obj, flags.output as OutputFormat, `${label(noun.kind, obj.name)} rolled back to revision ${String(flags.to)} (now revision ${obj.revision})`);
  });

  addWatchCommand(cmd, noun, ctx);
  noun.addCommands?.(cmd, ctx);
}
