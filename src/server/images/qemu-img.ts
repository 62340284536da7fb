import { ApiError } from '../../api/errors.ts';
import { CommandError, type Runner } from '../../base/runner.ts';
import type { DiskFormat } from './image-info-check.ts';
import type { ImageLimits } from './image-limits.ts';
import { withLimits } from './with-limits.ts';

/**
 * Environment for limited tools: glibc reserves 64 MiB of address space per
 * malloc arena and qemu-img's thread pool would open many, so under
 * `prlimit --as` thread creation failed at random until arenas were capped.
 */
export const toolEnv: Record<string, string> = { MALLOC_ARENA_MAX: '2' };

/**
 * qemu-img for untrusted files: the format is always given (`-f`, never
 * probed), images are opened shared (`-U`), and every run has a time,
 * CPU and memory limit; conversion also caps the output file size.
 */
export class QemuImg {
  constructor(
    private readonly runner: Runner,
    private readonly limits: Pick<ImageLimits, 'toolMemoryBytes' | 'inspectTimeoutMs' | 'convertTimeoutMs'>,
  ) {}

  /** The parsed JSON of `qemu-img info`. */
  async info(path: string, format: DiskFormat): Promise<unknown> {
    const argv = ['qemu-img', 'info', '-U', '--output=json', '-f', format, path];
    const r = await this.inspect(argv, path, 'read');
    try {
      return JSON.parse(r.stdout) as unknown;
    } catch {
      throw new ApiError('invalid', 'Cannot read image: qemu-img info gave no JSON');
    }
  }

  /** Runs `qemu-img check`; leaked clusters are harmless, corruption or an unfinished check is refused. */
  async check(path: string, format: Exclude<DiskFormat, 'raw'>): Promise<void> {
    const argv = ['qemu-img', 'check', '-U', '--output=json', '-f', format, path];
    try {
      await this.runner.run({ argv: this.inspectLimits(argv), env: toolEnv, timeoutMs: this.limits.inspectTimeoutMs });
    } catch (e) {
      const code = e instanceof CommandError ? e.result.code : undefined;
      if (code === 3 || code === 63) return;
      if (code === 2) throw new ApiError('invalid', 'Cannot check image: qemu-img check found corruption', { cause: e });
      throw toolFailure(e, 'check', [path]);
    }
  }

  /** Converts to a fresh qcow2 at `dst`; a larger output than `maxOutputBytes` fails the conversion. */
  async convert(src: string, format: DiskFormat, dst: string, maxOutputBytes: number): Promise<void> {
    const argv = withLimits(['qemu-img', 'convert', '-U', '-f', format, '-O', 'qcow2', src, dst], {
      addressSpaceBytes: this.limits.toolMemoryBytes,
      fileSizeBytes: maxOutputBytes,
    });
    try {
      await this.runner.run({ argv, env: toolEnv, timeoutMs: this.limits.convertTimeoutMs });
    } catch (e) {
      throw toolFailure(e, 'convert', [src, dst]);
    }
  }

  private inspectLimits(argv: string[]): string[] {
    return withLimits(argv, {
      addressSpaceBytes: this.limits.toolMemoryBytes,
      cpuSeconds: this.limits.inspectTimeoutMs / 1000,
    });
  }

  private async inspect(argv: string[], path: string, action: string) {
    try {
      return await this.runner.run({ argv: this.inspectLimits(argv), env: toolEnv, timeoutMs: this.limits.inspectTimeoutMs });
    } catch (e) {
      throw toolFailure(e, action, [path]);
    }
  }
}

/** A failed tool run as a user-facing error, with server paths taken out of the tool's words. */
export function toolFailure(e: unknown, action: string, paths: string[]): ApiError {
  if (!(e instanceof CommandError)) return new ApiError('internal', `Cannot ${action} image: tool did not run`, { cause: e });
  const stderr = e.result.stderr;
  if (/killed by SIGXFSZ|File too large/.test(stderr)) {
    return new ApiError('too_large', `Cannot ${action} image: output exceeds the size limit`, { cause: e });
  }
  if (/killed by/.test(stderr)) {
    return new ApiError('invalid', `Cannot ${action} image: exceeded its time or memory limit`, { cause: e });
  }
  let text = stderr.trim().split('\n').filter(Boolean).slice(-1)[0] ?? `exit code ${e.result.code}`;
  for (const p of paths) text = text.split(p).join('image');
  text = text.replace(/\/[^\s'"]+/g, '<path>').slice(0, 300);
  return new ApiError('invalid', `Cannot ${action} image: ${text}`, { cause: e });
}
