import { Option, type Command } from 'commander';
import type { AnyObject } from '../api/object.ts';
import type { Flags, Noun } from './noun.ts';
import { outputFormats, type Column, type OutputFormat } from './output.ts';

/** Adds `-o table|json|yaml`. */
export function outputOption(cmd: Command, def: OutputFormat = 'table'): Command {
  return cmd.addOption(new Option('-o, --output <format>', 'output format').choices(outputFormats).default(def));
}

/** Names one object of a noun as users read it: `vm "web-1"`. */
export function label(kind: string, name: string): string {
  return `${kind} "${name}"`;
}

/** The project flag of project-scoped kinds; `-A` where listing across projects makes sense. */
export function projectOptions(cmd: Command, scoped: boolean, all = false): Command {
  if (!scoped) return cmd;
  cmd.option('--project <name>', 'project (default "default")');
  if (all) cmd.option('-A, --all-projects', 'every project');
  return cmd;
}

/** The project to address: `*` for -A, else --project, else the server's default. */
export function projectOf(flags: Flags): string | undefined {
  if (flags.allProjects) return '*';
  return flags.project as string | undefined;
}

/** Table columns of a noun's objects: NAME, PROJECT (across projects), the noun's own, REVISION. */
export function columnsOf(noun: Noun, acrossProjects: boolean): Column[] {
  return [
    { header: 'NAME', value: (o) => o.name },
    ...(acrossProjects ? [{ header: 'PROJECT', value: (o: AnyObject) => o.project }] : []),
    ...noun.columns,
    { header: 'REVISION', value: (o) => o.revision },
  ];
}
