import type { Command } from 'commander';
import { ApiError } from '../api/errors.ts';
import type { CliContext } from './context.ts';
import { resolveSettings, writeConfigFile, type ConfigFile, type GlobalFlags } from './config.ts';
import { normalizeFingerprint } from '../base/fingerprint.ts';
import { pinnedFetch } from '../base/pinned-fetch.ts';
import { Client } from '../client/client.ts';
import type { Flags } from './noun.ts';
import { fetchServerCertificate } from './server-certificate.ts';
import { UsageError } from './usage-error.ts';

/** Reads one line from a stream (the y/N answer). */
async function readLine(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += chunk.toString();
    const nl = text.indexOf('\n');
    if (nl >= 0) return text.slice(0, nl);
  }
  return text;
}

/**
 * The fingerprint to pin for an https server: none when the system CAs trust
 * it, else the one shown if the user confirms it (--fingerprint, --yes, or y at
 * the prompt). Anything else refuses.
 */
async function choosePin(ctx: CliContext, server: string, flags: Flags): Promise<string | undefined> {
  const url = new URL(server);
  if (url.protocol !== 'https:') return undefined;
  const expected = flags.fingerprint === undefined ? undefined : normalizeFingerprint(flags.fingerprint as string);
  if (flags.fingerprint !== undefined && !expected)
    throw new UsageError(`Invalid --fingerprint "${String(flags.fingerprint)}": expected sha256: and 64 hex digits`);
  const cert = await fetchServerCertificate(url);
  if (cert.trusted && !expected) return undefined;
  ctx.warn(`Server "${url.host}" presents a certificate ${cert.trusted ? 'trusted by this system' : `that this system does not trust (${cert.problem ?? 'unknown issuer'})`}.`);
  ctx.warn(`Its fingerprint is ${cert.fingerprint}`);
  if (expected) {
    if (expected !== cert.fingerprint)
      throw new ApiError('invalid', `Refusing server "${url.host}": its certificate fingerprint ${cert.fingerprint} does not match --fingerprint ${expected}`);
    return cert.fingerprint;
  }
  if (flags.yes) return cert.fingerprint;
  if (!ctx.io.stdin.isTTY)
    throw new UsageError('Cannot confirm the certificate without a terminal: compare the fingerprint above with the one the server printed, then pass --fingerprint or --yes');
  ctx.warn('Compare it with the fingerprint the server printed when it started.');
  ctx.io.stderr.write('Trust it? [y/N] ');
  const answer = (await readLine(ctx.io.stdin)).trim().toLowerCase();
  if (answer !== 'y' && answer !== 'yes') throw new UsageError('Certificate not trusted: nothing written');
  return cert.fingerprint;
}

/** Reads what the user types without echoing it (a terminal), or the next line of piped stdin. */
class SecretReader {
  private piped?: Promise<string[]>;

  constructor(private readonly ctx: CliContext) {}

  async read(prompt: string): Promise<string> {
    const stdin = this.ctx.io.stdin as NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
    if (!stdin.isTTY || typeof stdin.setRawMode !== 'function') {
      this.piped ??= (async () => {
        let text = '';
        for await (const chunk of stdin) text += chunk.toString();
        return text.split(/\r?\n/);
      })();
      const lines = await this.piped;
      const line = lines.shift();
      if (line === undefined || line === '') throw new UsageError(`Cannot read ${prompt.replace(/: $/, '').toLowerCase()}: stdin has no more lines`);
      return line;
    }
    this.ctx.io.stderr.write(prompt);
    stdin.setRawMode(true);
    try {
      let text = '';
      for await (const chunk of stdin) {
        for (const ch of chunk.toString()) {
          if (ch === '\r' || ch === '\n') return text;
          if (ch === '\u0003') throw new UsageError('Login cancelled');
          text = ch === '\u007f' || ch === '\b' ? text.slice(0, -1) : text + ch;
        }
      }
      return text;
    } finally {
      stdin.setRawMode(false);
      this.ctx.io.stderr.write('\n');
    }
  }
}

/** `Basic` (or `TOTP`, with the code after the password) credentials, as the server's password authenticators read them. */
function passwordHeader(user: string, password: string, code?: string): string {
  const scheme = code === undefined ? 'Basic' : 'TOTP';
  return `${scheme} ${Buffer.from(`${user}:${password}${code === undefined ? '' : `:${code}`}`, 'utf8').toString('base64')}`;
}

/**
 * Logs in with a user name and password (and a TOTP code with --totp): the
 * password is read without echo (or from piped stdin) and never saved; a
 * scoped token for --project is minted with it and saved instead.
 */
async function tokenFromPassword(ctx: CliContext, server: string, fingerprint: string | undefined, flags: Flags): Promise<string> {
  if (!flags.project) throw new UsageError('Missing --project NAME: a password login saves a token for one project');
  const reader = new SecretReader(ctx);
  const password = await reader.read('Password: ');
  const code = flags.code !== undefined ? String(flags.code) : flags.totp ? await reader.read('TOTP code: ') : undefined;
  const pinned = fingerprint ? pinnedFetch(fingerprint) : undefined;
  try {
    const client = new Client({ baseUrl: server, authorization: passwordHeader(String(flags.user), password, code), ...(pinned ? { fetch: pinned.fetch } : ctx.io.fetch ? { fetch: ctx.io.fetch } : {}) });
    const body = { project: flags.project, scopes: ['*'], ttl: flags.ttl ?? '12h', description: 'crowd login' };
    const created = await client.http.json<{ token: string; expiresAt: string }>({ method: 'POST', path: '/v1/tokens', body });
    ctx.warn(`Minted a token for project "${String(flags.project)}" that expires ${created.expiresAt}`);
    return created.token;
  } finally {
    await pinned?.close();
  }
}

/** `crowd login --server URL (--token TOKEN | --user NAME --project P)`: checks the credentials, pins a self-signed certificate, writes the config file (0600). */
export function addLoginCommand(program: Command, ctx: CliContext): void {
  program
    .command('login')
    .description('check a server and token (or log in with a password), pin its certificate if self-signed, and save them to the config file')
    .option('--fingerprint <sha256>', 'the certificate fingerprint the server printed (pins without asking)')
    .option('-y, --yes', 'trust the certificate shown without asking')
    .option('--user <name>', 'log in with this user name; the password is prompted for (or read from stdin)')
    .option('--project <name>', 'with --user: the project the saved token acts in')
    .option('--ttl <ttl>', 'with --user: how long the saved token lasts (default 12h)')
    .option('--totp', 'with --user: prompt for a TOTP code too')
    .option('--code <code>', 'with --user: the TOTP or recovery code (no prompt)')
    .action(async (flags: Flags) => {
      const settings = resolveSettings(program.opts<GlobalFlags>(), ctx.io.env, {});
      if (!settings.token && !flags.user) throw new UsageError('Missing --token TOKEN (or CROWD_TOKEN), or --user NAME --project P');
      const fingerprint = await choosePin(ctx, settings.server, flags);
      const token = flags.user ? await tokenFromPassword(ctx, settings.server, fingerprint, flags) : settings.token!;
      const client = ctx.clientFor({ ...settings, token, ...(fingerprint ? { fingerprint } : {}) });
      await client.projects.list({ limit: 1 });
      const config: ConfigFile = { server: settings.server, token };
      if (fingerprint) config.fingerprint = fingerprint;
      const path = ctx.configPath();
      writeConfigFile(path, config);
      ctx.print(`Logged in to ${settings.server}${fingerprint ? ` (certificate ${fingerprint} pinned)` : ''}; saved to ${path}`);
    });
}
