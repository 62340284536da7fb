import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Command } from 'commander';
import YAML from 'yaml';
import { ApiError } from '../api/errors.ts';
import { kindDef } from '../api/kinds.ts';
import type { AnyObject } from '../api/object.ts';
import { editorCommand } from './config.ts';
import type { CliContext } from './context.ts';
import { readOnlyFields } from './documents.ts';
import { runEditor } from './editor.ts';
import type { Flags, Noun } from './noun.ts';
import { label, projectOf, projectOptions } from './command-options.ts';

const fixedFields = ['kind', 'name', 'project', ...readOnlyFields] as const;

/**
 * What to write after an edit: undefined when nothing changed, else the PUT body.
 * Changing a read-only field or breaking the YAML is an error and writes nothing.
 */
export function editedBody(original: AnyObject, text: string, what: string): Record<string, unknown> | undefined {
  let edited: unknown;
  try {
    edited = YAML.parse(text);
  } catch (e) {
    const message = (e as Error).message.split('\n')[0]!;
    throw new ApiError('invalid', `Cannot save the edit of ${what}: not valid YAML: ${message}; nothing written`, { details: [{ path: '/', message }] });
  }
  if (edited === null || typeof edited !== 'object' || Array.isArray(edited))
    throw new ApiError('invalid', `Cannot save the edit of ${what}: expected the object as a YAML mapping; nothing written`, { details: [{ path: '/', message: 'expected a mapping' }] });
  const doc = edited as Record<string, unknown>;
  if (isDeepStrictEqual(doc, original)) return undefined;
  for (const f of fixedFields) {
    if (!isDeepStrictEqual(doc[f], (original as unknown as Record<string, unknown>)[f]))
      throw new ApiError('invalid', `Cannot save the edit of ${what}: "${f}" cannot be changed; nothing written`, { details: [{ path: `/${f}`, message: 'read-only' }] });
  }
  const body: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) if (!(readOnlyFields as readonly string[]).includes(k)) body[k] = v;
  return body;
}

/** `crowd <noun> edit NAME`: the object as YAML in $EDITOR, written back with If-Match. */
export function addEditCommand(parent: Command, noun: Noun, ctx: CliContext): void {
  const scoped = kindDef(noun.kind).scope === 'project';
  const cmd = parent
    .command('edit')
    .description(`edit a ${noun.kind} as YAML in $EDITOR; saved only if unchanged on the server meanwhile`)
    .argument('<name>', 'name or id')
    .option('--reason <text>', 'why, kept in the history');
  projectOptions(cmd, scoped).action(async (name: string, flags: Flags) => {
    const res = ctx.client().resource(noun.kind);
    const project = projectOf(flags);
    const original = await res.get(name, { project });
    const what = label(noun.kind, original.name);
    const dir = await mkdtemp(join(tmpdir(), 'crowd-edit-'));
    try {
      const file = join(dir, `${noun.kind}-${original.name}.yaml`);
      const text = `# Edit ${what} below and save; lines starting with # are ignored.\n# Only labels, metadata and spec can change; an unchanged file writes nothing.\n${YAML.stringify(original)}`;
      await writeFile(file, text, { mode: 0o600 });
      await runEditor(editorCommand(ctx.io.env), file);
      const after = await readFile(file, 'utf8');
      const body = after === text ? undefined : editedBody(original, after, what);
      if (!body) {
        ctx.print(`${what} unchanged; nothing written`);
        return;
      }
      const saved = await res.update(original.name, body as unknown as AnyObject, { project, ifMatch: original.revision, reason: flags.reason as string | undefined });
      ctx.print(`${what} edited (revision ${saved.revision})`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
