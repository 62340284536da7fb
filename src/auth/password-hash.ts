import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import bcrypt from 'bcryptjs';
import { shaCryptOffThread } from './sha-crypt-pool.ts';

// apache-md5's typings are wrong under NodeNext; it is a plain CommonJS function.
const apr1 = createRequire(import.meta.url)('apache-md5') as (password: string, salt?: string) => string;

/** The hash formats Apache's `htpasswd` writes that crowdcloud accepts. */
export type HashKind = 'bcrypt' | 'apr1' | 'sha1' | 'sha256-crypt' | 'sha512-crypt';

/** Which format a stored hash is in; undefined for DES crypt, plaintext and anything unknown. */
export function hashKind(hash: string): HashKind | undefined {
  if (/^\$2[abxy]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) return 'bcrypt';
  if (/^\$apr1\$[^$]{1,8}\$[./A-Za-z0-9]{22}$/.test(hash)) return 'apr1';
  if (/^\{SHA\}[A-Za-z0-9+/]{27}=$/.test(hash)) return 'sha1';
  if (/^\$5\$(rounds=\d+\$)?[^$]{0,16}\$[./A-Za-z0-9]{43}$/.test(hash)) return 'sha256-crypt';
  if (/^\$6\$(rounds=\d+\$)?[^$]{0,16}\$[./A-Za-z0-9]{86}$/.test(hash)) return 'sha512-crypt';
  return undefined;
}

/** Hashes `password` with the algorithm, cost and salt of `hash`, so the two can be compared. */
async function rehash(password: string, hash: string, kind: HashKind): Promise<string> {
  switch (kind) {
    case 'bcrypt':
      return bcrypt.hash(password, hash.slice(0, 29));
    case 'apr1':
      return apr1(password, hash);
    case 'sha1':
      return `{SHA}${createHash('sha1').update(password, 'utf8').digest('base64')}`;
    case 'sha256-crypt':
    case 'sha512-crypt':
      return shaCryptOffThread(password, hash);
  }
}

/** Whether `password` matches `hash`; the final comparison takes the same time wherever they differ. */
export async function verifyHash(password: string, hash: string): Promise<boolean> {
  const kind = hashKind(hash);
  if (!kind) return false;
  const got = Buffer.from(await rehash(password, hash, kind), 'utf8');
  const want = Buffer.from(hash, 'utf8');
  return got.length === want.length && timingSafeEqual(got, want);
}

/**
 * A hash of a random password with the same algorithm and cost as `like`:
 * checking a password against it costs what a real check costs, so an unknown
 * user cannot be told from a wrong password by timing.
 */
export async function dummyHashLike(like: string | undefined): Promise<string> {
  const kind = like ? hashKind(like) : undefined;
  const secret = randomBytes(18).toString('base64');
  switch (kind) {
    case 'bcrypt':
      return bcrypt.hash(secret, like!.slice(0, 7) + bcrypt.genSaltSync(4).slice(7));
    case 'apr1':
      return apr1(secret);
    case 'sha1':
      return `{SHA}${createHash('sha1').update(secret).digest('base64')}`;
    case 'sha256-crypt':
    case 'sha512-crypt': {
      const rounds = /^\$[56]\$(rounds=\d+\$)?/.exec(like!)![0];
      return shaCryptOffThread(secret, rounds + randomBytes(12).toString('base64').replace(/[+=]/g, '.'));
    }
    case undefined:
      return bcrypt.hash(secret, 10);
  }
}
