import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { AnyObject } from '../api/object.ts';

/**
 * Base images from a local folder by name, `<dir>/<image-name>.qcow2` (or
 * `.raw`), checked before the image cache pulls from the server
 * (`crowd agent --image-dir`): tests with local guests, air-gapped hosts.
 */
export function localImages(dir: string): (image: AnyObject) => { path: string; format: 'qcow2' | 'raw' } | undefined {
  return (image) => {
    for (const format of ['qcow2', 'raw'] as const) {
      const path = join(dir, `${image.name}.${format}`);
      if (existsSync(path)) return { path, format };
    }
    return undefined;
  };
}
