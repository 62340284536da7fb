import type { Command } from 'commander';
import type { AnyObject } from '../api/object.ts';
import { label, outputOption, projectOptions } from './command-options.ts';
import type { CliContext } from './context.ts';
import { printConsoleLog, runConsole } from './console.ts';
import type { Flags } from './noun.ts';
import { renderValue } from './output.ts';

const path = (name: string, sub: string) => `/v1/vms/${encodeURIComponent(name)}/${sub}`;

async function stdinBytes(ctx: CliContext): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of ctx.io.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks);
}

/**
 * `crowd vm start|stop|reboot|reset|console|pipe`: actions on one VM.
 * start and stop set spec.power; reboot and reset return once the VM's
 * agent accepted them; console and pipe travel to the host over its agent's
 * tunnel.
 */
export function addVmActionCommands(cmd: Command, ctx: CliContext): void {
  for (const [verb, what] of [
    ['start', 'set spec.power to running'],
    ['stop', 'set spec.power to stopped (ACPI power-off, then a hard stop after a timeout)'],
  ] as const) {
    const c = cmd.command(verb).description(what).argument('<name>', 'vm name or id').option('--reason <text>', 'why, kept in the history');
    projectOptions(outputOption(c), true).action(async (name: string, flags: Flags) => {
      const vm = await ctx.client().http.json<AnyObject>({ method: 'POST', path: path(name, verb), query: { project: flags.project as string | undefined }, reason: flags.reason as string | undefined });
      if (flags.output !== 'table') return ctx.print(renderValue(vm, flags.output as 'json' | 'yaml'));
      ctx.print(`${label('vm', vm.name)} power set to ${(vm.spec as { power?: string }).power} (revision ${vm.revision})`);
    });
  }
  for (const [verb, what] of [
    ['reboot', 'reboot: a graceful stop, then a fresh start (the VM must be running)'],
    ['reset', 'reset: a hardware reset of the running guest'],
  ] as const) {
    const c = cmd.command(verb).description(what).argument('<name>', 'vm name or id');
    projectOptions(c, true).action(async (name: string, flags: Flags) => {
      const out = await ctx.client().http.json<{ node: string }>({ method: 'POST', path: path(name, verb), query: { project: flags.project as string | undefined } });
      ctx.print(`${verb === 'reboot' ? 'Reboot' : 'Reset'} of ${label('vm', name)} accepted by node "${out.node}"`);
    });
  }
  const console = cmd
    .command('console')
    .description('attach to the serial console (Ctrl-] detaches), or print its log with --log')
    .argument('<name>', 'vm name or id')
    .option('--log', 'print the recent console output and exit');
  projectOptions(console, true).action(async (name: string, flags: Flags) => {
    const project = flags.project as string | undefined;
    await (flags.log ? printConsoleLog(ctx, name, project) : runConsole(ctx, name, project));
  });
  const pipe = cmd.command('pipe').description("the host↔guest pipe (the guest's side is /crowd/v1/pipe on its metadata service)");
  const write = pipe
    .command('write')
    .description('queue bytes for the guest to read (at most 64 KiB per write)')
    .argument('<name>', 'vm name or id')
    .argument('[data]', 'the text to send; "-" or nothing reads stdin');
  projectOptions(write, true).action(async (name: string, data: string | undefined, flags: Flags) => {
    const bytes = data === undefined || data === '-' ? await stdinBytes(ctx) : Buffer.from(data, 'utf8');
    await ctx.client().http.json({ method: 'POST', path: path(name, 'pipe'), query: { project: flags.project as string | undefined }, body: { data: bytes.toString('base64') } });
    ctx.warn(`Queued ${bytes.length} bytes for ${label('vm', name)}`);
  });
  const read = pipe
    .command('read')
    .description('take what the guest wrote (consumed; prints nothing when it wrote nothing)')
    .argument('<name>', 'vm name or id')
    .option('--base64', 'print base64 instead of the bytes as UTF-8 text');
  projectOptions(read, true).action(async (name: string, flags: Flags) => {
    const out = await ctx.client().http.json<{ data: string } | undefined>({ method: 'GET', path: path(name, 'pipe'), query: { project: flags.project as string | undefined } });
    if (!out) return;
    ctx.io.stdout.write(flags.base64 ? `${out.data}\n` : Buffer.from(out.data, 'base64').toString('utf8'));
  });
}
