/** One precomputed response body with its content type; rendered once per guest change, served many times. */
export interface Doc {
  body: Buffer;
  type: string;
}

/** A guest's documents by canonical path (no leading or trailing `/`, versions folded to `latest`). */
export type Documents = Map<string, Doc>;

/**
 * A metadata tree: leaves are strings, directories are objects. A key
 * written `0=name` is listed as such (no `/`) and addressed as `0`: EC2's
 * public-keys convention that cloud-init's reader expects.
 */
export type TreeNode = string | { [name: string]: TreeNode };

export function textDoc(text: string): Doc {
  return { body: Buffer.from(text, 'utf8'), type: 'text/plain; charset=utf-8' };
}

export function jsonDoc(value: unknown): Doc {
  return { body: Buffer.from(JSON.stringify(value), 'utf8'), type: 'application/json' };
}

/** The EC2-style listing of a directory: sorted, one entry a line, subdirectories with a trailing `/`. */
export function listing(dir: { [name: string]: TreeNode }): string {
  return Object.keys(dir)
    .sort()
    .map((k) => (typeof dir[k] === 'object' && !k.includes('=') ? `${k}/` : k))
    .join('\n');
}

/** Adds a tree's listings and leaves under `prefix` to `out`. */
export function addTree(out: Documents, prefix: string, node: TreeNode): void {
  if (typeof node === 'string') {
    out.set(prefix, textDoc(node));
    return;
  }
  out.set(prefix, textDoc(listing(node)));
  for (const [key, child] of Object.entries(node)) addTree(out, `${prefix}/${key.split('=')[0]}`, child);
}
