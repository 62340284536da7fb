import { StringDecoder } from 'node:string_decoder';
import type WebSocket from 'ws';
import { ApiError } from '../api/errors.ts';
import { PinMismatchError } from '../base/pinned-fetch.ts';
import { openWebSocket, UpgradeRefusedError, webSocketUrl } from '../base/pinned-websocket.ts';
import type { CliContext } from './context.ts';

/** Ctrl-] (GS, 0x1d): like telnet, the key that leaves the console. */
export const detachByte = 0x1d;

type RawCapable = { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

function vmPath(name: string, project: string | undefined, sub: string): string {
  return `/v1/vms/${encodeURIComponent(name)}/${sub}${project ? `?project=${encodeURIComponent(project)}` : ''}`;
}

/** Opens the console's WebSocket; a refusal becomes the server's ApiError, a failed connection an `unavailable` one. */
async function openConsoleSocket(url: string, opts: { authorization?: string; fingerprint?: string }): Promise<WebSocket> {
  try {
    return await openWebSocket(url, opts);
  } catch (e) {
    if (e instanceof UpgradeRefusedError) throw ApiError.fromBody(e.status, e.body);
    if (e instanceof PinMismatchError) throw e;
    throw new ApiError('unavailable', `Cannot reach server "${new URL(url).host}": ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** `crowd vm console NAME --log`: the VM's recent console output, as the host logged it. */
export async function printConsoleLog(ctx: CliContext, name: string, project: string | undefined): Promise<void> {
  const res = await ctx.client().http.open({ method: 'GET', path: `/v1/vms/${encodeURIComponent(name)}/console/log`, query: { project }, accept: 'text/plain' });
  ctx.io.stdout.write(await res.text());
}

/**
 * `crowd vm console NAME`: the serial console, interactive. At a terminal
 * stdin goes raw (every key reaches the guest); Ctrl-] detaches, as does the
 * end of stdin or Ctrl-C's abort signal. Resolves when the session is over.
 */
export async function runConsole(ctx: CliContext, name: string, project: string | undefined): Promise<void> {
  const s = ctx.settings();
  const url = webSocketUrl(s.server, vmPath(name, project, 'console'));
  const ws = await openConsoleSocket(url, {
    ...(s.token ? { authorization: `Bearer ${s.token}` } : {}),
    ...(s.fingerprint && s.server.startsWith('https:') ? { fingerprint: s.fingerprint } : {}),
  });
  const { stdin, stdout, signal } = ctx.io;
  const tty = stdin as typeof stdin & RawCapable;
  const raw = tty.isTTY === true && typeof tty.setRawMode === 'function';
  if (raw) tty.setRawMode!(true);
  ctx.warn(`Connected to the console of vm "${name}". Detach with Ctrl-] .`);
  const decoder = new StringDecoder('utf8');
  let detached = false;
  const detach = () => {
    if (detached) return;
    detached = true;
    ws.close(1000, 'detached');
  };
  const onInput = (chunk: Buffer | string) => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const at = bytes.indexOf(detachByte);
    const before = at < 0 ? bytes : bytes.subarray(0, at);
    if (before.length > 0 && !detached) ws.send(before);
    if (at >= 0) detach();
  };
  ws.on('message', (data: Buffer) => stdout.write(decoder.write(data)));
  ws.resume();
  stdin.on('data', onInput);
  stdin.once('end', detach);
  signal?.addEventListener('abort', detach, { once: true });
  try {
    const [code, reason] = await new Promise<[number, string]>((resolve) => ws.once('close', (c, r) => resolve([c, r.toString()])));
    const rest = decoder.end();
    if (rest) stdout.write(rest);
    if (raw) stdout.write('\r\n');
    ctx.warn(detached ? `Detached from the console of vm "${name}".` : `The console of vm "${name}" closed${reason ? `: ${reason}` : ` (code ${code})`}.`);
  } finally {
    if (raw) tty.setRawMode!(false);
    stdin.off('data', onInput);
    stdin.off('end', detach);
    stdin.pause();
    signal?.removeEventListener('abort', detach);
  }
}
