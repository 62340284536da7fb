import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { Client } from '../client/client.ts';
import type { CliIo } from './cli-io.ts';
import { configPath, readConfigFile, resolveSettings, type GlobalFlags, type Settings } from './config.ts';
import { pinnedFetch } from '../base/pinned-fetch.ts';
import { UsageError } from './usage-error.ts';

/** What every command needs: the I/O of this run and a client built from the global flags. */
export class CliContext {
  private readonly closers: (() => Promise<void>)[] = [];

  constructor(
    readonly io: CliIo,
    private readonly program: Command,
  ) {}

  /** Writes a line (or lines) to stdout. */
  print(text: string): void {
    this.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** Writes a line to stderr. */
  warn(text: string): void {
    this.io.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  configPath(): string {
    return configPath(this.io.env);
  }

  settings(): Settings {
    const flags = this.program.opts<GlobalFlags>();
    return resolveSettings(flags, this.io.env, readConfigFile(this.configPath()));
  }

  /** A client for the resolved server; verifies the pinned certificate when the config pinned one. */
  client(): Client {
    return this.clientFor(this.settings());
  }

  /** A client for given settings: a pinned fetch for a pinned https server, else the injected or global fetch. */
  clientFor(s: Settings): Client {
    let fetchImpl = this.io.fetch;
    if (s.fingerprint && s.server.startsWith('https:')) {
      const pinned = pinnedFetch(s.fingerprint);
      this.closers.push(pinned.close);
      fetchImpl = pinned.fetch;
    }
    return new Client({ baseUrl: s.server, authorization: s.token ? `Bearer ${s.token}` : undefined, fetch: fetchImpl });
  }

  /** Ends the connection pools this run opened, so the process exits at once. */
  async close(): Promise<void> {
    await Promise.all(this.closers.splice(0).map((c) => c().catch(() => {})));
  }

  /** The text of a file, or of stdin for `-`. */
  async readInput(path: string): Promise<string> {
    if (path !== '-') {
      try {
        return await readFile(path, 'utf8');
      } catch (e) {
        throw new UsageError(`Cannot read "${path}": ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
      }
    }
    const chunks: Buffer[] = [];
    for await (const c of this.io.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
    return Buffer.concat(chunks).toString('utf8');
  }
}
