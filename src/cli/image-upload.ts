import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { ApiError } from '../api/errors.ts';
import type { AnyObject } from '../api/object.ts';
import type { CliContext } from './context.ts';
import { ImageTransfer, TransferProgress } from './image-transfer.ts';
import { UsageError } from './usage-error.ts';

export interface UploadOptions {
  file: string;
  name: string;
  project?: string;
  sha256?: string;
  /** Appends retried after a broken connection within this run (default 3). */
  retries: number;
}

/** What the CLI remembers of an unfinished upload, so a later run continues it. */
interface UploadState {
  server: string;
  project: string;
  name: string;
  file: string;
  size: number;
  mtimeMs: number;
  session: string;
}

interface Session {
  id: string;
  offset: number;
}

/** Where unfinished uploads are remembered: beside the CLI config, one file per server, project and image. */
function statePath(ctx: CliContext, server: string, project: string, name: string): string {
  const key = createHash('sha256').update(`${server}\n${project}\n${name}`).digest('hex').slice(0, 32);
  return join(dirname(ctx.configPath()), 'uploads', `${key}.json`);
}

async function readState(path: string): Promise<UploadState | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as UploadState;
  } catch {
    return undefined;
  }
}

/**
 * `crowd image upload FILE --name N`: creates the image if needed, then sends
 * the file in a resumable upload session, streaming from disk. A broken
 * connection is retried from the offset the server reports; a run that
 * fails leaves a note beside the config so the next run with the same file
 * continues where the server stopped instead of starting over.
 */
export async function uploadImage(ctx: CliContext, o: UploadOptions): Promise<AnyObject> {
  const file = resolve(o.file);
  const st = await stat(file).catch(() => undefined);
  if (!st?.isFile()) throw new UsageError(`Cannot upload "${o.file}": no such file`);
  const server = ctx.settings().server;
  const project = o.project ?? 'default';
  const http = new ImageTransfer(ctx);
  const base = `/v1/images/${encodeURIComponent(o.name)}`;
  const notePath = statePath(ctx, server, project, o.name);
  try {
    await ensureImage(ctx, o, project);
    let session = await resumable(http, base, project, await readState(notePath), { file, size: st.size, mtimeMs: st.mtimeMs });
    if (session) ctx.warn(`Resuming the upload of "${o.file}" at byte ${session.offset}`);
    else {
      session = await http.json<Session>({ method: 'POST', path: `${base}/uploads`, project, body: JSON.stringify({ size: st.size, ...(o.sha256 ? { sha256: o.sha256 } : {}) }) });
      await mkdir(dirname(notePath), { recursive: true, mode: 0o700 });
      const note: UploadState = { server, project, name: o.name, file, size: st.size, mtimeMs: st.mtimeMs, session: session.id };
      await writeFile(notePath, JSON.stringify(note), { mode: 0o600 });
    }
    const progress = new TransferProgress(ctx, `Uploading ${o.name}`, st.size, session.offset);
    try {
      session.offset = await sendRest(http, { path: `${base}/uploads/${session.id}`, project, file, size: st.size, offset: session.offset, retries: o.retries, progress });
    } finally {
      progress.stop();
    }
    ctx.warn(`Checking and converting ${o.name} on the server`);
    const image = await http.json<AnyObject>({ method: 'POST', path: `${base}/uploads/${session.id}/finish`, project }).catch(async (e: unknown) => {
      await rm(notePath, { force: true });
      throw e;
    });
    await rm(notePath, { force: true });
    return image;
  } finally {
    await http.close();
  }
}

async function ensureImage(ctx: CliContext, o: UploadOptions, project: string): Promise<void> {
  const images = ctx.client().images;
  try {
    await images.get(o.name, { project });
  } catch (e) {
    if (!(e instanceof ApiError && e.code === 'not_found')) throw e;
    await images.create({ name: o.name, spec: o.sha256 ? { sha256: o.sha256 } : {} } as never, { project });
    ctx.warn(`image "${o.name}" created`);
  }
}

/** The session of an earlier run for the same file, if the server still has it. */
async function resumable(http: ImageTransfer, base: string, project: string, note: UploadState | undefined, file: Pick<UploadState, 'file' | 'size' | 'mtimeMs'>): Promise<Session | undefined> {
  if (!note || note.file !== file.file || note.size !== file.size || note.mtimeMs !== file.mtimeMs) return undefined;
  try {
    return await http.json<Session>({ method: 'GET', path: `${base}/uploads/${note.session}`, project });
  } catch (e) {
    if (e instanceof ApiError && e.code === 'not_found') return undefined;
    throw e;
  }
}

/** Sends the file from `offset` to its end; after a broken connection asks the server where it stopped and continues. */
async function sendRest(
  http: ImageTransfer,
  o: { path: string; project: string; file: string; size: number; offset: number; retries: number; progress: TransferProgress },
): Promise<number> {
  let offset = o.offset;
  for (let attempt = 0; ; attempt++) {
    if (offset >= o.size) return offset;
    let sent = offset;
    const counting = new Transform({
      transform(chunk: Buffer, _enc, done) {
        sent += chunk.length;
        o.progress.update(sent);
        done(null, chunk);
      },
    });
    const body = Readable.toWeb(createReadStream(o.file, { start: offset }).pipe(counting)) as ReadableStream<Uint8Array>;
    try {
      const res = await http.json<Session>({ method: 'PATCH', path: o.path, project: o.project, headers: { 'content-type': 'application/octet-stream', 'upload-offset': String(offset) }, body });
      offset = res.offset;
    } catch (e) {
      const retryable = e instanceof ApiError && (e.code === 'unavailable' || e.code === 'conflict');
      if (!retryable || attempt >= o.retries) throw e;
      offset = (await http.json<Session>({ method: 'GET', path: o.path, project: o.project })).offset;
    }
  }
}
