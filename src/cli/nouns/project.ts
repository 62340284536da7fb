import type { Command } from 'commander';
import { at, defined, type Flags, type Noun } from '../noun.ts';

/** Projects: the namespaces that hold VMs, networks, images and firewalls. */
export const projectNoun: Noun = {
  kind: 'project',
  summary: 'projects (namespaces for VMs, networks, images, firewalls)',
  columns: [{ header: 'DESCRIPTION', value: (o) => at(o, 'spec', 'description') }],
  addCreateFlags(cmd: Command) {
    cmd.option('--description <text>', 'what the project is for');
  },
  spec: (flags: Flags) => defined({ description: flags.description }),
};
