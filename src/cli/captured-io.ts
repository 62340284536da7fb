import { Readable } from 'node:stream';
import type { CliIo } from './cli-io.ts';
import { runCli } from './main.ts';

/** The result of one in-process CLI run. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of one in-process run: environment, stdin text (and whether it claims to be a terminal), abort signal. */
export interface RunOptions {
  env?: Record<string, string | undefined>;
  stdin?: string;
  tty?: boolean;
  signal?: AbortSignal;
  /** Called with each stdout chunk as it is written (to follow a watch). */
  onStdout?: (chunk: string) => void;
}

/** Runs `crowd …` in-process with captured output, for tests and scripts. */
export async function runCaptured(argv: string[], opts: RunOptions = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const stdin = Readable.from(opts.stdin === undefined ? [] : [Buffer.from(opts.stdin)]) as Readable & { isTTY?: boolean };
  if (opts.tty) stdin.isTTY = true;
  const io: CliIo = {
    stdout: {
      write: (s: string) => {
        stdout += s;
        opts.onStdout?.(s);
      },
    },
    stderr: { write: (s: string) => (stderr += s) },
    stdin,
    env: opts.env ?? {},
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}
