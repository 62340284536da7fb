import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import YAML from 'yaml';
import { UsageError } from './usage-error.ts';

/** The environment as the CLI sees it; read only in this file. */
export type Env = Record<string, string | undefined>;

/** What `crowd login` remembers in `~/.config/crowd/config.yaml`. */
export interface ConfigFile {
  server?: string;
  token?: string;
  /** `sha256:<hex>` of the server's certificate, pinned on login. */
  fingerprint?: string;
}

/** Where the CLI sends requests and with which credentials, after flags, environment and config file. */
export interface Settings {
  server: string;
  token?: string;
  /** Set only when the server is the one the config file pinned. */
  fingerprint?: string;
}

export interface GlobalFlags {
  server?: string;
  token?: string;
}

/** `CROWD_CONFIG`, else `~/.config/crowd/config.yaml`. */
export function configPath(env: Env): string {
  return env.CROWD_CONFIG || join(env.HOME || homedir(), '.config', 'crowd', 'config.yaml');
}

/** The editor `crowd … edit` opens: `$VISUAL`, `$EDITOR`, else vi. */
export function editorCommand(env: Env): string {
  return env.VISUAL || env.EDITOR || 'vi';
}

/** Reads the config file; a missing file is empty, a malformed one a usage error naming the file. */
export function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new UsageError(`Cannot read config file "${path}": ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new UsageError(`Cannot read config file "${path}": ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`Cannot read config file "${path}": expected a mapping`);
  const out: ConfigFile = {};
  for (const [k, v] of Object.entries(doc)) {
    if (k !== 'server' && k !== 'token' && k !== 'fingerprint') throw new UsageError(`Cannot read config file "${path}": unknown key "${k}"`);
    if (typeof v !== 'string') throw new UsageError(`Cannot read config file "${path}": "${k}" must be a string`);
    out[k] = v;
  }
  return out;
}

/** Writes the config file readable by its owner only (0600), atomically. */
export function writeConfigFile(path: string, config: ConfigFile): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, YAML.stringify(config), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

function sameServer(a: string, b: string): boolean {
  return a.replace(/\/+$/, '') === b.replace(/\/+$/, '');
}

/**
 * Flags win over the environment (`CROWD_URL`, `CROWD_TOKEN`), which wins over
 * the config file. The file's token and pinned fingerprint belong to the file's
 * server and are never sent to another one.
 */
export function resolveSettings(flags: GlobalFlags, env: Env, file: ConfigFile): Settings {
  const server = flags.server || env.CROWD_URL || file.server;
  if (!server) throw new UsageError('No server to talk to: pass --server URL, set CROWD_URL, or run "crowd login --server URL --token TOKEN"');
  if (!/^https?:\/\/[^/]/.test(server)) throw new UsageError(`Invalid server URL "${server}": expected http:// or https://`);
  const fromFile = !!file.server && sameServer(server, file.server);
  const settings: Settings = { server };
  const token = flags.token || env.CROWD_TOKEN || (fromFile ? file.token : undefined);
  if (token) settings.token = token;
  if (fromFile && file.fingerprint) settings.fingerprint = file.fingerprint;
  return settings;
}
