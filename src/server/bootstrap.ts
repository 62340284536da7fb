import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { ApiError } from '../api/errors.ts';
import { defaultProject } from '../api/kinds.ts';
import { schemaErrors } from '../api/validate.ts';
import { hashToken, type StaticToken } from '../auth/static-token.ts';
import { secretToken } from '../base/ids.ts';
import type { Store } from '../store/store.ts';
import { stringify } from 'yaml';

/** Where the static tokens' hashes live inside the data directory. */
export const staticTokensFile = 'static-tokens.json';

const TokensFile = Type.Object(
  { tokens: Type.Array(Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }), sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }) }, { additionalProperties: false })) },
  { additionalProperties: false },
);

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
}

/**
 * The static tokens of a data directory. On first start (no file yet) an
 * admin token is made, only its sha256 is written (mode 0600), and the token
 * itself is returned once as `created` for printing.
 */
export async function ensureAdminToken(dataDir: string): Promise<{ tokens: StaticToken[]; created?: string }> {
  const path = join(dataDir, staticTokensFile);
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (!isMissing(e)) throw e;
  }
  if (text === undefined) {
    const token = secretToken('crowd');
    const tokens = [{ name: 'admin', sha256: hashToken(token) }];
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await writeFile(path, `${JSON.stringify({ tokens }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    return { tokens, created: token };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`Cannot read "${path}": not valid JSON`);
  }
  const problems = schemaErrors(TokensFile, doc);
  if (problems.length) throw new Error(`Cannot read "${path}": ${problems[0]!.path}: ${problems[0]!.message}`);
  return { tokens: (doc as { tokens: StaticToken[] }).tokens };
}

/** Creates an object unless one of that kind and name exists (a concurrent creator counts as existing). */
async function ensureObject(store: Store, kind: string, name: string, spec: Record<string, unknown>): Promise<void> {
  try {
    await store.get({ kind, idOrName: name });
  } catch (e) {
    if (!(e instanceof ApiError) || e.code !== 'not_found') throw e;
    try {
      await store.create({ kind, name, spec }, { author: 'system', reason: 'bootstrap' });
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== 'already_exists') throw err;
    }
  }
}

/** Creates the `default` project unless it exists, so a fresh store takes project-scoped objects at once. */
export async function ensureDefaultProject(store: Store): Promise<void> {
  await ensureObject(store, 'project', defaultProject, { description: 'the default project' });
}

/** Creates the `default` site unless it exists, so hosts can enrol at once. */
export async function ensureDefaultSite(store: Store): Promise<void> {
  await ensureObject(store, 'site', 'default', { description: 'created on first start' });
}

/** Writes the CLI's config (`{server, token}`, mode 0600) unless the file exists; returns whether it wrote. */
export async function writeCliConfig(path: string, config: { server: string; token: string }): Promise<boolean> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    await writeFile(path, stringify(config), { mode: 0o600, flag: 'wx' });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}
