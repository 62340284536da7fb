import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * Starts QEMU in its own session (setsid) with stdio going to a file, so it
 * survives the agent's exit; the agent neither waits for it nor keeps it
 * alive. Node still reaps it if it ends while the agent runs.
 */
export function spawnDetached(binary: string, argv: string[], logPath: string): ChildProcess {
  const fd = openSync(logPath, 'w', 0o600);
  try {
    const child = spawn(binary, argv, { detached: true, stdio: ['ignore', fd, fd] });
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

/** The pid QEMU wrote with -pidfile, if any. */
export async function readPid(pidFile: string): Promise<number | undefined> {
  const text = await readFile(pidFile, 'utf8').catch(() => '');
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 1 ? pid : undefined;
}

/** When the pid file was written, as the process's start time. */
export async function pidFileTime(pidFile: string): Promise<number | undefined> {
  return stat(pidFile).then((s) => s.mtimeMs, () => undefined);
}

/**
 * Whether `pid` is a live QEMU of this VM: its command line names the VM's
 * pid file, which guards against a recycled pid. Zombies have an empty one.
 */
export async function isVmProcess(pid: number | undefined, pidFile: string): Promise<boolean> {
  if (pid === undefined) return false;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.split('\0').includes(pidFile);
}

/** Polls until the process is gone; true if it went within `timeoutMs`. */
export async function waitGone(pid: number | undefined, pidFile: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (await isVmProcess(pid, pidFile)) {
    if (Date.now() >= deadline) return false;
    await delay(20);
  }
  return true;
}

/** The tail of QEMU's stderr, for error messages. */
export async function qemuStderr(logPath: string): Promise<string> {
  const text = await readFile(logPath, 'utf8').catch(() => '');
  return text.trim().split('\n').slice(-5).join(' | ').slice(-2000);
}
