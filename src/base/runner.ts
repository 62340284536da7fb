import { spawn } from 'node:child_process';

/** One external command. `input` goes to stdin. */
export interface Command {
  argv: string[];
  input?: string;
  /** Kill after this many ms (default 60 s). */
  timeoutMs?: number;
  env?: Record<string, string>;
  cwd?: string;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The one boundary where crowdcloud executes other programs. */
export interface Runner {
  /** Runs to completion; rejects with `CommandError` on a non-zero exit or timeout. */
  run(cmd: Command): Promise<CommandResult>;
}

export class CommandError extends Error {
  constructor(
    readonly argv: string[],
    readonly result: CommandResult,
  ) {
    const err = result.stderr.trim().split('\n').slice(-3).join(' | ');
    super(`Command "${argv.join(' ')}" failed with exit code ${result.code}${err ? `: ${err}` : ''}`);
    this.name = 'CommandError';
  }
}

const maxOutput = 16 * 1024 * 1024;

export class ExecRunner implements Runner {
  run(cmd: Command): Promise<CommandResult> {
    const [file, ...args] = cmd.argv;
    if (!file) return Promise.reject(new Error('Cannot run an empty command'));
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, {
        cwd: cmd.cwd,
        env: cmd.env ? { ...process.env, ...cmd.env } : process.env,
        stdio: ['pipe', 'pipe', 'pipe'],
        timeout: cmd.timeoutMs ?? 60_000,
        killSignal: 'SIGKILL',
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let size = 0;
      const collect = (into: Buffer[]) => (b: Buffer) => {
        size += b.length;
        if (size <= maxOutput) into.push(b);
      };
      child.stdout.on('data', collect(out));
      child.stderr.on('data', collect(err));
      child.on('error', (e) => reject(new Error(`Cannot run "${file}": ${e.message}`, { cause: e })));
      child.on('close', (code, signal) => {
        const result = {
          code: code ?? (signal ? 128 : 1),
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8') + (signal ? `\nkilled by ${signal}` : ''),
        };
        if (result.code === 0) resolve(result);
        else reject(new CommandError(cmd.argv, result));
      });
      child.stdin.on('error', () => {});
      child.stdin.end(cmd.input ?? '');
    });
  }
}

/**
 * Records commands instead of running them; answers from a list of
 * (matcher → result) rules, default success with empty output.
 */
export class FakeRunner implements Runner {
  readonly calls: Command[] = [];
  private rules: { match: (argv: string[]) => boolean; result: Partial<CommandResult> }[] = [];

  on(match: string | RegExp | ((argv: string[]) => boolean), result: Partial<CommandResult>): this {
    const fn =
      typeof match === 'function'
        ? match
        : typeof match === 'string'
          ? (argv: string[]) => argv.join(' ').startsWith(match)
          : (argv: string[]) => match.test(argv.join(' '));
    this.rules.push({ match: fn, result });
    return this;
  }

  async run(cmd: Command): Promise<CommandResult> {
    this.calls.push(cmd);
    const rule = this.rules.find((r) => r.match(cmd.argv));
    const result = { code: 0, stdout: '', stderr: '', ...rule?.result };
    if (result.code !== 0) throw new CommandError(cmd.argv, result);
    return result;
  }

  /** The commands run so far, each joined by spaces. */
  lines(): string[] {
    return this.calls.map((c) => c.argv.join(' '));
  }
}
