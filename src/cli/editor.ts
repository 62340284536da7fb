import { spawn } from 'node:child_process';

/**
 * Opens a file in the user's editor and waits for it to close. This is the
 * CLI's one external command outside the base Runner: an editor needs the
 * terminal (inherited stdio), which the Runner's captured pipes cannot give.
 */
export function runEditor(command: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `${command} "$1"`, 'sh', file], { stdio: 'inherit' });
    child.on('error', (e) => reject(new Error(`Cannot start editor "${command}": ${e.message}`, { cause: e })));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`Editor "${command}" failed (${signal ?? `exit code ${code}`}): nothing written`));
    });
  });
}
