import type { Command } from 'commander';
import type { FirewallRule } from '../../api/kinds/firewall.ts';
import { collect } from '../flags.ts';
import { at, defined, type Flags, type Noun } from '../noun.ts';
import { UsageError } from '../usage-error.ts';

const ruleHelp = 'DIRECTION ACTION [PROTOCOL [PORTS|any [CIDRS|firewall:NAME]]], e.g. "ingress accept tcp 22,443 10.0.0.0/8"';

/** `--rule "ingress accept tcp 22,443 10.0.0.0/8"` as one rule. */
export function parseRule(text: string): FirewallRule {
  const [direction, action, protocol, ports, remote, ...extra] = text.trim().split(/\s+/);
  const bad = (why: string) => new UsageError(`Invalid --rule "${text}": ${why}; expected ${ruleHelp}`);
  if (extra.length) throw bad('too many words');
  if (direction !== 'ingress' && direction !== 'egress') throw bad(`"${direction ?? ''}" is not ingress or egress`);
  if (action !== 'accept' && action !== 'drop' && action !== 'reject') throw bad(`"${action ?? ''}" is not accept, drop or reject`);
  const rule: FirewallRule = { direction, action };
  if (protocol !== undefined) rule.protocol = protocol as FirewallRule['protocol'];
  if (ports !== undefined && ports !== 'any') rule.ports = ports.split(',');
  if (remote?.startsWith('firewall:')) rule.remote = { firewall: remote.slice('firewall:'.length) };
  else if (remote !== undefined) rule.remote = { cidrs: remote.split(',') };
  return rule;
}

/** Firewalls: ordered rules applied to NICs and networks. */
export const firewallNoun: Noun = {
  kind: 'firewall',
  summary: 'firewalls (rule sets for NICs and networks)',
  columns: [
    { header: 'RULES', value: (o) => (at(o, 'spec', 'rules') as unknown[] | undefined)?.length ?? 0 },
    { header: 'DESCRIPTION', value: (o) => at(o, 'spec', 'description') },
  ],
  addCreateFlags(cmd: Command) {
    cmd
      .option('--rule <rule>', `a rule: ${ruleHelp} (repeatable, in order)`, collect)
      .option('--description <text>', 'what the firewall is for')
      .option('--geek-mode', 'also allow SSH from anywhere');
  },
  spec(flags: Flags) {
    return defined({
      description: flags.description,
      rules: ((flags.rule as string[] | undefined) ?? []).map(parseRule),
      geekMode: flags.geekMode,
    });
  },
};
