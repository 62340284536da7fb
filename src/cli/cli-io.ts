/** Something the CLI writes text to (process.stdout, or a buffer in tests). */
export interface TextSink {
  write(text: string): unknown;
}

/** Everything the CLI touches outside itself, so tests run it in-process. */
export interface CliIo {
  stdout: TextSink;
  stderr: TextSink;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: Record<string, string | undefined>;
  /** Replaces the network (tests); the CLI otherwise uses global fetch, or a pinned one for a pinned server. */
  fetch?: typeof fetch;
  /** Ends long-running commands (watch) when aborted, like Ctrl-C does. */
  signal?: AbortSignal;
}
