import { Command, CommanderError } from 'commander';
import { ApiError } from '../api/errors.ts';
import { addApplyCommand } from './apply.ts';
import { addAuditCommand } from './audit.ts';
import type { CliIo } from './cli-io.ts';
import { CliContext } from './context.ts';
import { addLoginCommand } from './login.ts';
import { nouns } from './nouns.ts';
import { addNounCommands } from './resource-commands.ts';
import { addRoleCommands } from './role.ts';
import { addTokenCommands } from './token.ts';
import { addTotpCommands } from './totp.ts';
import { addGlobalWatchCommand } from './watch-command.ts';
import { UsageError } from './usage-error.ts';

export type { CliIo } from './cli-io.ts';

/** Commands of the binary that are not the CLI: shown in help only. */
const longRunning = [
  ['up', 'run crowdcloud on this machine: server and agent on loopback, SQLite in the data dir'],
  ['server', 'run the API server of a site (crowd server --help)'],
  ['agent', 'run the host agent (crowd agent --help)'],
] as const;

const untrustedHint = /self[- ]signed|unable to verify|unable to get local issuer|certificate/i;

/** Prints an error as users should see it and returns the exit code: 1 for API errors, 2 for usage errors. */
export function reportError(ctx: CliContext, e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
  if (e instanceof UsageError) {
    ctx.warn(`Error: ${e.message}`);
    return 2;
  }
  if (e instanceof ApiError) {
    ctx.warn(`Error: ${e.message}`);
    for (const d of e.details ?? []) if (!e.message.includes(`${d.path}: ${d.message}`)) ctx.warn(`  ${d.path}: ${d.message}`);
    if (e.code === 'unavailable' && untrustedHint.test(e.message) && !/Refusing/.test(e.message))
      ctx.warn('  (a self-signed server? run "crowd login --server URL --token TOKEN" to check and pin its certificate)');
    return 1;
  }
  ctx.warn(`Error: ${(e as Error)?.message ?? String(e)}`);
  return 1;
}

/** Builds the command tree for one run. */
function buildProgram(io: CliIo): { program: Command; ctx: CliContext } {
  const program = new Command('crowd');
  const ctx = new CliContext(io, program);
  program
    .description('crowdcloud: manage VMs, networks and images through the crowd API')
    .option('--server <url>', 'API URL (else $CROWD_URL, else the config file)')
    .option('--token <token>', 'bearer token (else $CROWD_TOKEN, else the config file)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) })
    .showSuggestionAfterError();
  // Listed for `crowd --help`; the binary (src/crowd.ts) runs them before the CLI is loaded.
  for (const [name, what] of longRunning)
    program
      .command(name)
      .description(what)
      .allowUnknownOption()
      .allowExcessArguments()
      .action(() => {
        throw new UsageError(`"crowd ${name}" runs through the crowd binary, not runCli`);
      });
  for (const noun of nouns) addNounCommands(program, noun, ctx);
  addApplyCommand(program, ctx);
  addLoginCommand(program, ctx);
  addTokenCommands(program, ctx);
  addTotpCommands(program, ctx);
  addRoleCommands(program, ctx);
  addAuditCommand(program, ctx);
  addGlobalWatchCommand(program, ctx);
  return { program, ctx };
}

/** Runs `crowd …` (everything but server, up and agent) and returns the exit code; never exits the process. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const { program, ctx } = buildProgram(io);
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return 2;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    return reportError(ctx, e);
  } finally {
    await ctx.close();
  }
}
