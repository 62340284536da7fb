import { execFileSync } from 'node:child_process';

/** Whether an executable is on PATH (or an absolute path that exists). */
export function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v "$0"`, name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * For tests that need real tools (QEMU, slapd, PostgreSQL, Chromium…):
 * returns the reason to skip when a tool is missing, or undefined when all are there.
 * Under CI (`CI` set) a missing tool is a failure, never a skip.
 *
 *   test('boots', { skip: missingTools('qemu-system-x86_64') }, async () => …)
 */
export function missingTools(...names: string[]): string | undefined {
  const missing = names.filter((n) => !hasTool(n));
  if (missing.length === 0) return undefined;
  if (process.env.CI) throw new Error(`Missing tools under CI: ${missing.join(', ')} (.ci/run must install them)`);
  return `missing tools: ${missing.join(', ')}`;
}

/** Like missingTools, for tests that need root (namespaces, bridges, taps). */
export function missingRoot(): string | undefined {
  if (process.getuid?.() === 0) return undefined;
  if (process.env.CI) throw new Error('Tests need root under CI');
  return 'needs root';
}
