import type { Command } from 'commander';
import { pinnedFetch } from '../base/pinned-fetch.ts';
import { Client } from '../client/client.ts';
import type { CliContext } from './context.ts';
import type { Flags } from './noun.ts';
import { UsageError } from './usage-error.ts';

/** What `POST /v1/totp/enrol` answers, once. */
interface Enrolled {
  uri: string;
  secret: string;
  recoveryCodes: string[];
  expiresAt: string;
}

/**
 * Reads the answers of a prompt-driven command one line at a time: without
 * echo on a terminal, else the next line of piped stdin (password first, then
 * the code, which may arrive after the URI was printed).
 */
class LineReader {
  private readonly chunks: AsyncIterator<unknown>;
  private buffered = '';

  constructor(private readonly ctx: CliContext) {
    this.chunks = (ctx.io.stdin as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  }

  async read(what: string): Promise<string> {
    const stdin = this.ctx.io.stdin as NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
    if (!stdin.isTTY || typeof stdin.setRawMode !== 'function') {
      const line = await this.nextLine((text) => text);
      if (line === undefined || line === '') throw new UsageError(`Cannot read the ${what.toLowerCase()}: stdin has no more lines`);
      return line;
    }
    this.ctx.io.stderr.write(`${what}: `);
    stdin.setRawMode(true);
    try {
      return (await this.nextLine(typed)) ?? '';
    } finally {
      stdin.setRawMode(false);
      this.ctx.io.stderr.write('\n');
    }
  }

  /** Stops reading stdin, so the process can exit. */
  async close(): Promise<void> {
    await this.chunks.return?.();
  }

  /** The next line (a terminal's Enter is a carriage return; Ctrl-C cancels); `edit` applies a terminal's backspaces. */
  private async nextLine(edit: (text: string) => string): Promise<string | undefined> {
    for (;;) {
      const end = this.buffered.search(/\r?\n|\r|\u0003/);
      if (end >= 0) {
        if (this.buffered[end] === '\u0003') throw new UsageError('Enrolment cancelled');
        const line = this.buffered.slice(0, end);
        this.buffered = this.buffered.slice(end).replace(/^\r?\n|^\r/, '');
        return edit(line);
      }
      const next = await this.chunks.next();
      if (next.done) {
        const rest = this.buffered;
        this.buffered = '';
        return rest === '' ? undefined : edit(rest);
      }
      this.buffered += String(next.value);
    }
  }
}

/** What a line typed in raw mode means: backspaces applied. */
function typed(raw: string): string {
  let text = '';
  for (const ch of raw) {
    text = ch === '\u007f' || ch === '\b' ? text.slice(0, -1) : text + ch;
  }
  return text;
}

/** The password login the server's enrolment routes require: `Basic`, or `TOTP` with a current code when already enrolled. */
function passwordAuthorization(user: string, password: string, current?: string): string {
  const scheme = current === undefined ? 'Basic' : 'TOTP';
  return `${scheme} ${Buffer.from(`${user}:${password}${current === undefined ? '' : `:${current}`}`, 'utf8').toString('base64')}`;
}

/** A first code as the server takes it, or a usage error before anything is sent. */
function checkCode(code: string): string {
  if (!/^\d{6}$/.test(code)) throw new UsageError(`Invalid code "${code}": expected the 6 digits the app shows`);
  return code;
}

/** `crowd totp enrol --user NAME`: prints the otpauth:// URI and recovery codes, then confirms with a first code. */
async function enrol(ctx: CliContext, flags: Flags): Promise<void> {
  const given = flags.code !== undefined ? checkCode(String(flags.code)) : undefined;
  const settings = ctx.settings();
  const current = flags.currentCode !== undefined ? String(flags.currentCode) : undefined;
  const reader = new LineReader(ctx);
  const pinned = settings.fingerprint && settings.server.startsWith('https:') ? pinnedFetch(settings.fingerprint) : undefined;
  try {
    const password = await reader.read('Password');
    const fetchImpl = pinned?.fetch ?? ctx.io.fetch;
    const client = new Client({ baseUrl: settings.server, authorization: passwordAuthorization(String(flags.user), password, current), ...(fetchImpl ? { fetch: fetchImpl } : {}) });
    const e = await client.http.json<Enrolled>({ method: 'POST', path: '/v1/totp/enrol' });
    ctx.print(`Add this to your authenticator app (it holds the secret ${e.secret}):\n  ${e.uri}`);
    ctx.print(`Recovery codes, each usable once instead of a code; shown only now:\n${e.recoveryCodes.map((c) => `  ${c}`).join('\n')}`);
    const code = given ?? checkCode(await reader.read('Code from the app'));
    await client.http.json({ method: 'POST', path: '/v1/totp/confirm', body: { code } });
    ctx.print(`TOTP enrolled for "${String(flags.user)}": log in with "crowd login --user ${String(flags.user)} --totp"`);
  } finally {
    await reader.close();
    await pinned?.close();
  }
}

/** `crowd totp enrol|reset`: a second factor for password users, and its reset by a cluster admin. */
export function addTotpCommands(program: Command, ctx: CliContext): void {
  const totp = program.command('totp').description('TOTP second factor: enrol yourself (password users), reset a user (cluster admins)');
  totp
    .command('enrol')
    .description('enrol in TOTP: prints the otpauth:// URI and recovery codes, then confirms a first code (the password is prompted for or read from stdin)')
    .requiredOption('--user <name>', 'your user name; enrolment needs your password, not a token')
    .option('--code <code>', 'the first code from the app (no prompt)')
    .option('--current-code <code>', 'when already enrolled: a current code (or recovery code) of the old secret, to log in')
    .action((flags: Flags) => enrol(ctx, flags));
  totp
    .command('reset <user>')
    .description('forget a user’s second factor (a lost device); the password alone works again until they re-enrol')
    .action(async (user: string) => {
      await ctx.client().http.json({ method: 'DELETE', path: `/v1/totp/${encodeURIComponent(user)}` });
      ctx.print(`TOTP of user "${user}" reset`);
    });
}
