import type { Command } from 'commander';
import type { JoinToken } from '../../api/enrolment.ts';
import type { AnyObject } from '../../api/object.ts';
import { label, outputOption } from '../command-options.ts';
import type { CliContext } from '../context.ts';
import { choiceFlag, intFlag, keyValueFlag, mebibytesFlag } from '../flags.ts';
import { at, defined, need, type Flags, type Noun } from '../noun.ts';
import { renderValue } from '../output.ts';
import { UsageError } from '../usage-error.ts';

const units: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `--ttl 90s|30m|2h|1d` (or plain seconds) as seconds; the server checks the allowed range. */
export function ttlFlag(value: string): number {
  const m = /^(\d{1,7})([smhd]?)$/.exec(value.trim());
  if (!m) throw new UsageError(`Invalid --ttl "${value}": expected a duration such as 30m, 2h or 1d`);
  return Number(m[1]) * units[m[2] || 's']!;
}

/** `crowd node join-token` and `crowd node revoke`: host enrolment, through the node routes. */
function addNodeCommands(cmd: Command, ctx: CliContext): void {
  const join = cmd
    .command('join-token')
    .description('make a one-time, expiring token a host enrols with (crowd agent --join-token)')
    .option('--site <name>', 'site the host joins (default "default")')
    .option('--label <key=value>', 'a label the node gets (repeatable)', keyValueFlag)
    .option('--ttl <duration>', 'how long the token is valid, 1m to 7d (default 1h)', ttlFlag);
  outputOption(join).action(async (flags: Flags) => {
    const body = defined({ site: flags.site, labels: flags.label, ttlSeconds: flags.ttl });
    const out = await ctx.client().http.json<JoinToken>({ method: 'POST', path: '/v1/nodes/join-tokens', body });
    if (flags.output !== 'table') return ctx.print(renderValue(out, flags.output as 'json' | 'yaml'));
    ctx.print(out.token);
    ctx.warn(`One-time join token, valid until ${out.expiresAt}: crowd agent --server URL --join-token TOKEN`);
  });
  const revoke = cmd
    .command('revoke')
    .description("invalidate a node's credentials (its agent is locked out; no other node is touched)")
    .argument('<name>', 'node name');
  outputOption(revoke).action(async (name: string, flags: Flags) => {
    const node = await ctx.client().http.json<AnyObject>({ method: 'POST', path: `/v1/nodes/${encodeURIComponent(name)}/revoke` });
    if (flags.output !== 'table') return ctx.print(renderValue(node, flags.output as 'json' | 'yaml'));
    ctx.print(`${label('node', node.name)} revoked`);
  });
}

/** Nodes: hosts that run VMs, with their site, architecture and capacity. */
export const nodeNoun: Noun = {
  kind: 'node',
  summary: 'hosts that run VMs',
  columns: [
    { header: 'SITE', value: (o) => at(o, 'spec', 'site') },
    { header: 'PHASE', value: (o) => at(o, 'status', 'phase') },
    { header: 'CPUS', value: (o) => at(o, 'spec', 'capacity', 'cpus') },
    { header: 'MEMORY_MIB', value: (o) => at(o, 'spec', 'capacity', 'memoryMiB') },
  ],
  addCreateFlags(cmd: Command) {
    cmd
      .option('--site <name>', 'site the node is at')
      .option('--arch <arch>', 'x86_64 (default) or aarch64', choiceFlag(['x86_64', 'aarch64'] as const))
      .option('--cpus <n>', 'CPUs available to VMs', intFlag)
      .option('--memory <size>', 'memory available to VMs, in MiB or with a unit (64GiB)', mebibytesFlag)
      .option('--disk <GiB>', 'disk available to VMs', intFlag)
      .option('--unschedulable', 'place no new VMs here');
  },
  spec(flags: Flags) {
    return defined({
      site: need<string>(flags, 'site', '--site'),
      arch: flags.arch ?? 'x86_64',
      capacity: {
        cpus: need<number>(flags, 'cpus', '--cpus'),
        memoryMiB: need<number>(flags, 'memory', '--memory'),
        diskGiB: need<number>(flags, 'disk', '--disk'),
      },
      unschedulable: flags.unschedulable,
    });
  },
  addCommands: addNodeCommands,
};
