import type { Command } from 'commander';
import { keyValueFlag } from '../flags.ts';
import { at, defined, type Flags, type Noun } from '../noun.ts';

/** Projects: the namespaces that hold VMs, networks, images and firewalls, and their role bindings. */
export const projectNoun: Noun = {
  kind: 'project',
  summary: 'projects (namespaces for VMs, networks, images, firewalls)',
  columns: [{ header: 'DESCRIPTION', value: (o) => at(o, 'spec', 'description') }],
  addCreateFlags(cmd: Command) {
    cmd.option('--description <text>', 'what the project is for');
    cmd.option('--member <user=role>', 'a role binding: user (or group:<name>) = admin, operator or viewer (repeatable)', keyValueFlag);
  },
  spec: (flags: Flags) => defined({ description: flags.description, members: flags.member }),
};
