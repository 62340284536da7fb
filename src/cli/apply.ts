import type { Command } from 'commander';
import { ApiError, type ErrorDetail } from '../api/errors.ts';
import { kindDef } from '../api/kinds.ts';
import type { AnyObject } from '../api/object.ts';
import type { Client } from '../client/client.ts';
import { asObject, desiredSpec, keyOf, orderForApply, planChange, readApplyDocs, referencesOf, type ApplyDoc, type PlannedChange } from './apply-plan.ts';
import { label } from './command-options.ts';
import type { CliContext } from './context.ts';
import { documentError, parseDocuments } from './documents.ts';
import type { Flags } from './noun.ts';
import { renderChanges } from './output.ts';

/** Reads live objects once each; a missing one is undefined. */
class LiveObjects {
  private readonly cache = new Map<string, Promise<AnyObject | undefined>>();
  constructor(private readonly client: Client) {}

  get(kind: string, project: string | undefined, name: string): Promise<AnyObject | undefined> {
    const key = keyOf(kind, project, name);
    let p = this.cache.get(key);
    if (!p) {
      p = this.client
        .resource(kind)
        .get(name, { project })
        .catch((e: unknown) => {
          if (e instanceof ApiError && e.code === 'not_found') return undefined;
          throw e;
        });
      this.cache.set(key, p);
    }
    return p;
  }
}

/**
 * Checks each document against the server and the other documents before
 * anything is written: references resolve, and the kind's cross-object checks
 * (machine type ranges, overlapping subnets) pass.
 */
async function checkAgainstServer(client: Client, docs: ApplyDoc[], live: LiveObjects, source: string): Promise<void> {
  const inFile = new Map(docs.map((d) => [keyOf(d.kind, d.project, d.name), d]));
  const problems: { index: number; details: ErrorDetail[] }[] = [];
  for (const doc of docs) {
    const def = kindDef(doc.kind);
    const details: ErrorDetail[] = [];
    const resolved = new Map<string, AnyObject>();
    for (const r of referencesOf(doc)) {
      const key = keyOf(r.kind, r.project, r.name);
      const found = inFile.get(key) ? asObject(inFile.get(key)!) : await live.get(r.kind, r.project, r.name);
      if (found) resolved.set(`${r.kind}/${r.name}`, found);
      else details.push({ path: r.path, message: `${label(r.kind, r.name)} does not exist on the server or in the file` });
    }
    const existing = await live.get(doc.kind, doc.project, doc.name);
    if (details.length === 0 && def.checkWith) {
      let siblings: AnyObject[] = [];
      if (def.needsSiblings) {
        const byName = new Map<string, AnyObject>();
        for await (const o of client.resource(doc.kind).listAll({ project: doc.project })) byName.set(o.name, o);
        for (const d of docs) if (d.kind === doc.kind && d.project === doc.project) byName.set(d.name, asObject(d));
        byName.delete(doc.name);
        siblings = [...byName.values()];
      }
      const ctx = { ref: (kind: string, name: string) => resolved.get(`${kind}/${name}`), siblings, name: doc.name, ...(existing ? { existing } : {}) };
      details.push(...def.checkWith(desiredSpec(doc, existing), ctx));
    }
    if (details.length) problems.push({ index: doc.index, details });
  }
  if (problems.length) {
    const sorted = problems.sort((a, b) => a.index - b.index);
    const err = documentError(source, sorted[0]!.index, sorted[0]!.details);
    for (const p of sorted.slice(1)) err.details!.push(...documentError(source, p.index, p.details).details!);
    throw err;
  }
}

function describe(p: PlannedChange): string {
  const where = p.doc.project !== undefined ? ` in project "${p.doc.project}"` : '';
  return `${label(p.doc.kind, p.doc.name)}${where}`;
}

async function write(client: Client, p: PlannedChange, reason: string | undefined): Promise<AnyObject> {
  const res = client.resource(p.doc.kind);
  const spec = desiredSpec(p.doc, p.current);
  if (p.action === 'create')
    return res.create({ name: p.doc.name, labels: p.doc.labels, metadata: p.doc.metadata, spec }, { project: p.doc.project, reason });
  return res.update(p.doc.name, { labels: p.doc.labels, metadata: p.doc.metadata, spec }, { project: p.doc.project, ifMatch: p.current!.revision, reason });
}

/** `crowd apply -f FILE [--dry-run]`: creates or updates every document by name, idempotently. */
export function addApplyCommand(program: Command, ctx: CliContext): void {
  program
    .command('apply')
    .description('create or update the objects of a multi-document YAML file by name; unchanged objects are not written')
    .requiredOption('-f, --file <file>', 'YAML or JSON documents ("-" for stdin)')
    .option('--dry-run', 'print what would change and write nothing')
    .option('--project <name>', 'project of documents that name none (default "default")')
    .option('--reason <text>', 'why, kept in the history of every changed object')
    .action(async (flags: Flags) => {
      const source = flags.file as string;
      const docs = orderForApply(readApplyDocs(parseDocuments(await ctx.readInput(source), source), source, flags.project as string | undefined));
      const client = ctx.client();
      const live = new LiveObjects(client);
      await checkAgainstServer(client, docs, live, source);
      const plans: PlannedChange[] = [];
      for (const d of docs) plans.push(planChange(d, await live.get(d.kind, d.project, d.name)));
      if (flags.dryRun) {
        for (const p of plans) {
          ctx.print(`${describe(p)}: ${p.action === 'create' ? 'would be created' : p.action === 'update' ? 'would be updated' : 'unchanged'}`);
          if (p.action !== 'unchanged') ctx.print(renderChanges(p.changes).replace(/^/gm, '  '));
        }
        ctx.print('Dry run: nothing written.');
        return;
      }
      const counts = { created: 0, updated: 0, unchanged: 0 };
      for (const p of plans) {
        if (p.action === 'unchanged') {
          counts.unchanged++;
          ctx.print(`${describe(p)} unchanged`);
          continue;
        }
        const obj = await write(client, p, flags.reason as string | undefined);
        counts[p.action === 'create' ? 'created' : 'updated']++;
        ctx.print(`${describe(p)} ${p.action === 'create' ? 'created' : 'updated'} (revision ${obj.revision})`);
      }
      ctx.print(`${plans.length} objects: ${counts.created} created, ${counts.updated} updated, ${counts.unchanged} unchanged`);
    });
}
