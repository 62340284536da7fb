import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { ApiError } from '../api/errors.ts';
import type { Logger } from '../base/logger.ts';
import type { Authenticator, AuthRequest, AuthResult } from './authenticator.ts';
import { parseBasic } from './basic-credentials.ts';
import { applyGrants, type GrantMap } from './grants.ts';
import { dummyHashLike, hashKind, verifyHash } from './password-hash.ts';

export interface HtpasswdOptions {
  /** Path of a file in Apache's htpasswd format. */
  file: string;
  logger: Logger;
  /** Roles per user name; users without an entry are authenticated with no roles. */
  users?: GrantMap;
}

interface Loaded {
  /** mtime, ctime, size and inode: any change means the file was rewritten. */
  version: string;
  hashes: Map<string, string>;
  dummy: string;
}

/** Parses htpasswd text: `user:hash` per line; blank lines and `#` comments skipped. */
export function parseHtpasswd(text: string): { hashes: Map<string, string>; problems: string[] } {
  const hashes = new Map<string, string>();
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const user = line.slice(0, colon);
    if (colon <= 0) return problems.push(`line ${i + 1}: expected "user:hash"`);
    const hash = line.slice(colon + 1);
    if (!hashKind(hash)) return problems.push(`line ${i + 1}: user "${user}": unsupported hash format (use htpasswd -B, -m, -s, -2 or -5)`);
    if (hashes.has(user)) return problems.push(`line ${i + 1}: user "${user}" appears twice; the first entry counts`);
    hashes.set(user, hash);
  });
  return { hashes, problems };
}

/**
 * Claims `Basic` credentials of the users in an htpasswd file, reloading the
 * file when it changes (checked on use). A user not in the file is passed on
 * (`skip`) only after a check against a dummy hash of the file's own format,
 * so the time taken does not reveal which users exist.
 */
export class HtpasswdAuthenticator implements Authenticator {
  readonly name = 'htpasswd';
  private loaded: Loaded;
  private reloading: Promise<void> | undefined;
  /** The last reload failure, so a file that stays missing is reported once, not on every request. */
  private reloadError = '';

  constructor(private readonly opts: HtpasswdOptions) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (e) {
      throw new ApiError('invalid', `Cannot read htpasswd file "${opts.file}": ${(e as Error).message}`, { cause: e });
    }
    this.loaded = this.parse(text, versionOf(statSync(opts.file)), undefined);
  }

  /** Resolves when the first dummy hash is ready; later reloads prepare theirs before swapping in. */
  async ready(): Promise<this> {
    if (this.loaded.dummy === '') this.loaded.dummy = await dummyHashLike(mostCommon(this.loaded.hashes));
    return this;
  }

  async authenticate(req: AuthRequest): Promise<AuthResult> {
    const cred = parseBasic(req.authorization);
    if (!cred) return { outcome: 'skip' };
    await this.ready();
    await this.reloadIfChanged();
    const hash = this.loaded.hashes.get(cred.user);
    const ok = await verifyHash(cred.password, hash ?? this.loaded.dummy);
    if (!hash) return { outcome: 'skip' };
    if (!ok) return { outcome: 'deny', reason: 'wrong password' };
    const roles = applyGrants(this.opts.users?.[cred.user] ?? []);
    return { outcome: 'ok', identity: { name: cred.user, authenticator: this.name, ...roles } };
  }

  private async reloadIfChanged(): Promise<void> {
    this.reloading ??= this.reload().finally(() => (this.reloading = undefined));
    await this.reloading;
  }

  private async reload(): Promise<void> {
    try {
      const version = versionOf(await stat(this.opts.file));
      if (version === this.loaded.version) return;
      const next = this.parse(await readFile(this.opts.file, 'utf8'), version, this.loaded.dummy);
      if (mostCommonKind(next.hashes) !== mostCommonKind(this.loaded.hashes)) next.dummy = await dummyHashLike(mostCommon(next.hashes));
      this.loaded = next;
      this.reloadError = '';
      this.opts.logger.info({ file: this.opts.file, users: next.hashes.size }, 'Reloaded htpasswd file');
    } catch (e) {
      const err = (e as Error).message;
      if (err !== this.reloadError) this.opts.logger.warn({ file: this.opts.file, err }, 'Cannot reload htpasswd file: keeping the users loaded before');
      this.reloadError = err;
    }
  }

  private parse(text: string, version: string, dummy: string | undefined): Loaded {
    const { hashes, problems } = parseHtpasswd(text);
    for (const p of problems) this.opts.logger.warn({ file: this.opts.file }, `Ignoring htpasswd entry: ${p}`);
    return { version, hashes, dummy: dummy ?? '' };
  }
}

function versionOf(s: { mtimeMs: number; ctimeMs: number; size: number; ino: number }): string {
  return `${s.mtimeMs}/${s.ctimeMs}/${s.size}/${s.ino}`;
}

/** A hash of the format (and cost) most users have, for the dummy check. */
function mostCommon(hashes: Map<string, string>): string | undefined {
  const counts = new Map<string, { n: number; hash: string }>();
  for (const h of hashes.values()) {
    const key = costKey(h);
    const c = counts.get(key) ?? { n: 0, hash: h };
    c.n++;
    counts.set(key, c);
  }
  return [...counts.values()].sort((a, b) => b.n - a.n)[0]?.hash;
}

function mostCommonKind(hashes: Map<string, string>): string {
  const h = mostCommon(hashes);
  return h ? costKey(h) : '';
}

/** Algorithm plus cost (bcrypt cost, crypt rounds): what decides how long a check takes. */
function costKey(hash: string): string {
  return /^(\$2.\$\d\d\$|\$apr1\$|\{SHA\}|\$[56]\$(rounds=\d+\$)?)/.exec(hash)?.[0] ?? '';
}
