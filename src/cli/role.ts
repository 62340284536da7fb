import type { Command } from 'commander';
import type { AnyObject } from '../api/object.ts';
import { outputOption } from './command-options.ts';
import type { CliContext } from './context.ts';
import type { Flags } from './noun.ts';
import { renderTable, renderValue } from './output.ts';
import { UsageError } from './usage-error.ts';

const roles = ['admin', 'operator', 'viewer'] as const;

function membersPath(project: string, member: string): string {
  return `/v1/projects/${encodeURIComponent(project)}/members/${encodeURIComponent(member)}`;
}

/** Prints a project's bindings: MEMBER and ROLE, sorted by member. */
async function printMembers(ctx: CliContext, project: string, flags: Flags): Promise<void> {
  const p = await ctx.client().projects.get(project);
  const members = ((p as AnyObject).spec as { members?: Record<string, string> }).members ?? {};
  if (flags.output !== 'table') return ctx.print(renderValue(members, flags.output as 'json' | 'yaml'));
  const rows = Object.entries(members).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  ctx.print(renderTable(['MEMBER', 'ROLE'], rows));
}

/**
 * `crowd role bind|unbind|list` and `crowd project members`: role bindings in
 * a project (a user name, or `group:<name>`); project admins manage their own.
 */
export function addRoleCommands(program: Command, ctx: CliContext): void {
  const role = program.command('role').description('bind users and groups to roles in a project (admin, operator, viewer)');
  role
    .command('bind <project> <member> <role>')
    .description('give a user (or group:<name>) a role in a project')
    .action(async (project: string, member: string, r: string) => {
      const value = roles.find((x) => x === r);
      if (!value) throw new UsageError(`Invalid role "${r}": expected ${roles.join(', ')}`);
      await ctx.client().http.json({ method: 'PUT', path: membersPath(project, member), body: { role: value } });
      ctx.print(`"${member}" is ${value} in project "${project}"`);
    });
  role
    .command('unbind <project> <member>')
    .description("remove a user's or group's role in a project")
    .action(async (project: string, member: string) => {
      await ctx.client().http.json({ method: 'DELETE', path: membersPath(project, member) });
      ctx.print(`"${member}" has no role in project "${project}" any more`);
    });
  outputOption(role.command('list <project>').description("a project's role bindings")).action((project: string, flags: Flags) => printMembers(ctx, project, flags));
  const projectCmd = program.commands.find((c) => c.name() === 'project');
  if (projectCmd) outputOption(projectCmd.command('members <project>').description("the project's role bindings (crowd role bind to change)")).action((project: string, flags: Flags) => printMembers(ctx, project, flags));
}
