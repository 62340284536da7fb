import type { Command } from 'commander';
import { outputOption } from './command-options.ts';
import type { CliContext } from './context.ts';
import type { Flags } from './noun.ts';
import { renderTable, renderValue } from './output.ts';
import { UsageError } from './usage-error.ts';

/** A token as the API lists it (never its secret). */
interface TokenInfo {
  id: string;
  subject: string;
  project: string;
  role: string;
  scopes: string[];
  cidr?: string;
  description?: string;
  expiresAt: string;
  revoked: boolean;
}

/** Splits `--scope vm:read,vm:write` (repeatable) into scopes. */
function scopeList(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(',').map((s) => s.trim()).filter((s) => s !== '')];
}

/** `crowd token create|list|revoke`: scoped tokens, narrower than the credential that mints them. */
export function addTokenCommands(program: Command, ctx: CliContext): void {
  const token = program.command('token').description('scoped tokens: create (narrower than your own credential), list, revoke');
  outputOption(
    token
      .command('create')
      .description('mint a scoped token; the secret is printed once')
      .requiredOption('--project <name>', 'the project it acts in ("*": every project, for cluster admins)')
      .requiredOption('--scope <scopes>', 'scopes such as vm:read,vm:write (repeatable; "*" for all)', scopeList)
      .requiredOption('--ttl <ttl>', 'lifetime such as 30m, 1h, 7d')
      .option('--role <role>', 'admin, operator or viewer (default: your own role)')
      .option('--cidr <cidr>', 'usable only from this source CIDR')
      .option('--description <text>', 'what it is for'),
  ).action(async (flags: Flags) => {
    if (!/^[1-9][0-9]{0,6}[smhd]$/.test(flags.ttl as string)) throw new UsageError(`Invalid --ttl "${String(flags.ttl)}": expected a number and s, m, h or d, e.g. 1h`);
    const body = {
      project: flags.project,
      scopes: flags.scope,
      ttl: flags.ttl,
      ...(flags.role ? { role: flags.role } : {}),
      ...(flags.cidr ? { cidr: flags.cidr } : {}),
      ...(flags.description ? { description: flags.description } : {}),
    };
    const created = await ctx.client().http.json<TokenInfo & { token: string }>({ method: 'POST', path: '/v1/tokens', body });
    if (flags.output !== 'table') return ctx.print(renderValue(created, flags.output as 'json' | 'yaml'));
    ctx.print(`token "${created.id}" created (project ${created.project}, role ${created.role}, expires ${created.expiresAt}); shown only now:\n${created.token}`);
  });
  outputOption(token.command('list').description('tokens you may manage (no secrets)')).action(async (flags: Flags) => {
    const { items } = await ctx.client().http.json<{ items: TokenInfo[] }>({ method: 'GET', path: '/v1/tokens' });
    if (flags.output !== 'table') return ctx.print(renderValue(items, flags.output as 'json' | 'yaml'));
    ctx.print(
      renderTable(
        ['ID', 'SUBJECT', 'PROJECT', 'ROLE', 'SCOPES', 'EXPIRES', 'REVOKED'],
        items.map((i) => [i.id, i.subject, i.project, i.role, i.scopes.join(','), i.expiresAt, i.revoked ? 'yes' : '']),
      ),
    );
  });
  token
    .command('revoke <id>')
    .description('revoke a token at once')
    .action(async (id: string) => {
      await ctx.client().http.json({ method: 'DELETE', path: `/v1/tokens/${encodeURIComponent(id)}` });
      ctx.print(`token "${id}" revoked`);
    });
}
