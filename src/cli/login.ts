import type { Command } from 'commander';
import { ApiError } from '../api/errors.ts';
import type { CliContext } from './context.ts';
import { resolveSettings, writeConfigFile, type ConfigFile, type GlobalFlags } from './config.ts';
import { normalizeFingerprint } from '../base/fingerprint.ts';
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

/** `crowd login --server URL --token TOKEN`: checks the credentials, pins a self-signed certificate, writes the config file (0600). */
export function addLoginCommand(program: Command, ctx: CliContext): void {
  program
    .command('login')
    .description('check a server and token, pin its certificate if self-signed, and save them to the config file')
    .option('--fingerprint <sha256>', 'the certificate fingerprint the server printed (pins without asking)')
    .option('-y, --yes', 'trust the certificate shown without asking')
    .action(async (flags: Flags) => {
      const settings = resolveSettings(program.opts<GlobalFlags>(), ctx.io.env, {});
      const token = settings.token;
      if (!token) throw new UsageError('Missing --token TOKEN (or CROWD_TOKEN)');
      const fingerprint = await choosePin(ctx, settings.server, flags);
      const client = ctx.clientFor({ ...settings, ...(fingerprint ? { fingerprint } : {}) });
      await client.projects.list({ limit: 1 });
      const config: ConfigFile = { server: settings.server, token };
      if (fingerprint) config.fingerprint = fingerprint;
      const path = ctx.configPath();
      writeConfigFile(path, config);
      ctx.print(`Logged in to ${settings.server}${fingerprint ? ` (certificate ${fingerprint} pinned)` : ''}; saved to ${path}`);
    });
}
