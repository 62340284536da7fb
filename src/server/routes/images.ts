import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../api/errors.ts';
import { defaultProject } from '../../api/kinds.ts';
import { Sha256, type ImageSpec, type ImageStatus } from '../../api/kinds/image.ts';
import type { AnyObject } from '../../api/object.ts';
import type { Clock } from '../../base/clock.ts';
import type { Logger } from '../../base/logger.ts';
import type { Store, WriteMeta } from '../../store/store.ts';
import { contentRange } from '../images/byte-range.ts';
import type { ImageRepository } from '../images/image-repository.ts';
import { imageStatus } from '../images/image-status.ts';
import type { StoredImage } from '../images/process-image.ts';
import { checkQuota, projectUsage } from '../images/project-usage.ts';
import type { UploadSession } from '../images/upload-sessions.ts';
import { allImages, blobInUse, blobOf, sweepImageBlobs } from './images-sweeper.ts';
import { IdParams, ProjectQuery, withErrors } from './route-schemas.ts';
import { sendObject, writeMeta } from './write-meta.ts';

export interface ImageRoutesOptions {
  repo: ImageRepository;
  store: Store;
  logger: Logger;
  clock: Clock;
  /** Bytes of stored images each project may hold; unlimited when absent. */
  quotaBytesPerProject?: number;
  /** Called after the blob of a deleted image is removed (tests wait on it). */
  onSweep?: (sha256: string) => void;
}

const UploadParams = Type.Object(
  { id: IdParams.properties.id, upload: Type.String({ pattern: '^upl_[0-9A-HJKMNP-TV-Z]{26}$', description: 'an upload session id' }) },
  { additionalProperties: false },
);
const UploadCreate = Type.Object(
  { size: Type.Optional(Type.Integer({ minimum: 0, description: 'the whole upload in bytes, checked at finish' })), sha256: Type.Optional(Sha256) },
  { additionalProperties: false },
);
const ImportRequest = Type.Object({ url: Type.String({ minLength: 1, maxLength: 4096 }), sha256: Type.Optional(Sha256) }, { additionalProperties: false });
const Session = Type.Object({ id: Type.String(), offset: Type.Integer(), expectedSize: Type.Optional(Type.Integer()), expectedSha256: Type.Optional(Type.String()) });

type Params = Static<typeof IdParams>;
type UploadRoute = { Params: Static<typeof UploadParams>; Querystring: Static<typeof ProjectQuery> };

/** The session as clients see it (without the owner tag). */
function publicSession(s: UploadSession): Static<typeof Session> {
  return { id: s.id, offset: s.offset, ...(s.expectedSize !== undefined ? { expectedSize: s.expectedSize } : {}), ...(s.expectedSha256 ? { expectedSha256: s.expectedSha256 } : {}) };
}

/** The `Upload-Offset` header of an append, or `invalid`. */
function uploadOffset(request: FastifyRequest): number {
  const raw = request.headers['upload-offset'];
  const text = Array.isArray(raw) ? raw[0] : raw;
  if (text === undefined || !/^\d{1,15}$/.test(text)) {
    throw new ApiError('invalid', `Invalid Upload-Offset header "${String(text ?? '').slice(0, 32)}": expected the byte offset the chunk starts at`, {
      details: [{ path: 'Upload-Offset', message: 'a non-negative integer' }],
    });
  }
  return Number(text);
}

/**
 * The image repository's HTTP face: resumable uploads and URL imports into an
 * image record, downloads with Range (also what hosts pull, by the node
 * credential, for the images their VMs use), and the blob sweeper that frees
 * storage when records go. Bodies of appends stream from the socket to disk.
 *
 *   POST   /v1/images/{id}/uploads               {size?, sha256?} → session (offset 0)
 *   GET    /v1/images/{id}/uploads/{upload}      → session, Upload-Offset (HEAD too)
 *   PATCH  /v1/images/{id}/uploads/{upload}      Upload-Offset: n, octet-stream body → session
 *   POST   /v1/images/{id}/uploads/{upload}/finish → the image, status ready (or the error; status failed)
 *   DELETE /v1/images/{id}/uploads/{upload}
 *   POST   /v1/images/{id}/import                {url, sha256?} → 202, status followed on the image
 *   GET    /v1/images/{id}/content               Range → 200/206, ETag "<sha256>"
 */
export function imageRoutes(o: ImageRoutesOptions): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    const { repo, store } = o;
    const tags = ['image'];
    const config = { resource: 'image', kind: 'image' };
    const stop = new AbortController();
    const imports = new Set<Promise<void>>();
    await repo.init();
    const sweeping = sweepImageBlobs({ store, repo, logger: o.logger, ...(o.onSweep ? { onSweep: o.onSweep } : {}) }, stop.signal);
    const expiring = setInterval(() => void repo.expireUploads().catch(() => undefined), 3600_000);
    expiring.unref();
    app.addHook('onClose', async () => {
      stop.abort();
      clearInterval(expiring);
      await Promise.all([sweeping, ...imports]);
    });
    // Chunks reach the handler as the raw request stream, never buffered.
    app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

    const getImage = (id: string, project: string | undefined) => store.get({ kind: 'image', project: project ?? defaultProject, idOrName: id });
    const owner = (image: AnyObject) => `${image.project}/${image.id}`;
    const setStatus = (image: AnyObject, status: ImageStatus, meta: WriteMeta) =>
      store.updateStatus({ kind: 'image', project: image.project!, idOrName: image.id }, status as Record<string, unknown>, { author: meta.author, ...(meta.reason ? { reason: meta.reason } : {}) });

    /** A session of this image, or not_found (a session of another image or project is not shown). */
    const sessionOf = async (image: AnyObject, upload: string): Promise<UploadSession> => {
      const s = await repo.uploadStatus(upload).catch(() => undefined);
      if (!s || s.project !== owner(image)) throw new ApiError('not_found', `Cannot find upload "${upload}" of image "${image.name}"`);
      return s;
    };

    const refuseFilled = (image: AnyObject) => {
      const phase = (image.status as ImageStatus).phase;
      if (phase === 'ready')
        throw new ApiError('conflict', `Cannot upload to image "${image.name}": it already holds content (sha256 "${blobOf(image)}"); create another image`);
    };

    const quotaCheck = async (image: AnyObject, addBytes: number) => {
      if (o.quotaBytesPerProject === undefined) return;
      const { items } = await allImages(store);
      const usedBytes = projectUsage(items.filter((i) => i.id !== image.id).map((i) => ({ project: i.project!, status: i.status }))).get(image.project!) ?? 0;
      checkQuota({ project: image.project!, usedBytes, addBytes, quotaBytes: o.quotaBytesPerProject });
    };

    /** Records a stored blob on the image (after the quota check), or the failure that prevented it. */
    const record = async (image: AnyObject, meta: WriteMeta, produce: () => Promise<StoredImage>): Promise<AnyObject> => {
      let stored: StoredImage | undefined;
      try {
        stored = await produce();
        // Two uploads or imports into one image may race; the first to finish wins.
        refuseFilled(await getImage(image.id, image.project));
        await quotaCheck(image, stored.sizeBytes);
        return await setStatus(image, imageStatus(stored), meta);
      } catch (e) {
        if (stored?.created && !(await blobInUse(store, stored.sha256))) await repo.remove(stored.sha256);
        const message = e instanceof Error ? e.message : String(e);
        const failed: ImageStatus = {
          phase: 'failed',
          conditions: [{ type: 'Ready', status: 'false', reason: 'ImageRefused', message: message.slice(0, 4000), lastTransition: new Date(o.clock.now()).toISOString() }],
        };
        const current = await getImage(image.id, image.project).catch(() => undefined);
        if (current && (current.status as ImageStatus).phase !== 'ready') await setStatus(image, failed, meta).catch(() => undefined);
        throw e;
      }
    };

    app.post<{ Params: Params; Querystring: Static<typeof ProjectQuery>; Body: Static<typeof UploadCreate> | undefined }>(
      '/v1/images/:id/uploads',
      { config, schema: { tags, summary: 'Start a resumable upload into an image', params: IdParams, querystring: ProjectQuery, body: Type.Optional(UploadCreate), response: withErrors({ 201: Session }) } },
      async (request, reply) => {
        const image = await getImage(request.params.id, request.query.project);
        refuseFilled(image);
        const body = request.body ?? {};
        if (body.size !== undefined) await quotaCheck(image, body.size);
        const expectedSha256 = body.sha256 ?? (image.spec as ImageSpec).sha256;
        const session = await repo.beginUpload({ project: owner(image), ...(body.size !== undefined ? { expectedSize: body.size } : {}), ...(expectedSha256 ? { expectedSha256 } : {}) });
        await setStatus(image, { phase: 'uploading' }, writeMeta(request));
        return reply.code(201).header('upload-offset', '0').header('location', `/v1/images/${image.id}/uploads/${session.id}`).send(publicSession(session));
      },
    );

    app.get<UploadRoute>(
      '/v1/images/:id/uploads/:upload',
      { config, schema: { tags, summary: 'An upload session and its offset (where to resume)', params: UploadParams, querystring: ProjectQuery, response: withErrors({ 200: Session }) } },
      async (request, reply) => {
        const s = await sessionOf(await getImage(request.params.id, request.query.project), request.params.upload);
        return reply.header('upload-offset', String(s.offset)).header('cache-control', 'no-store').send(publicSession(s));
      },
    );

    const append = async (request: FastifyRequest<UploadRoute>, reply: FastifyReply) => {
      const type = request.headers['content-type'] ?? '';
      if (!/^application\/octet-stream\b/i.test(type))
        throw new ApiError('invalid', `Cannot append to upload "${request.params.upload}": send the bytes as application/octet-stream, not "${type.slice(0, 64)}"`, {
          details: [{ path: 'Content-Type', message: 'must be application/octet-stream' }],
        });
      const offset = uploadOffset(request);
      await sessionOf(await getImage(request.params.id, request.query.project), request.params.upload);
      const s = await repo.appendUpload(request.params.upload, offset, request.raw);
      return reply.header('upload-offset', String(s.offset)).send(publicSession(s));
    };
    for (const method of ['PATCH', 'PUT'] as const) {
      app.route<UploadRoute>({
        method,
        url: '/v1/images/:id/uploads/:upload',
        bodyLimit: repo.limits.maxUploadBytes,
        config,
        schema: { tags, summary: 'Append a chunk (application/octet-stream) at Upload-Offset', params: UploadParams, querystring: ProjectQuery, response: withErrors({ 200: Session }) },
        handler: append,
      });
    }

    app.post<UploadRoute>(
      '/v1/images/:id/uploads/:upload/finish',
      { config, schema: { tags, summary: 'Check, convert and store an upload; the image becomes ready', params: UploadParams, querystring: ProjectQuery, response: withErrors({ 200: Type.Unknown() }) } },
      async (request, reply) => {
        const image = await getImage(request.params.id, request.query.project);
        refuseFilled(image);
        const s = await sessionOf(image, request.params.upload);
        const finish = async () => {
          await quotaCheck(image, s.offset).catch(async (e: unknown) => {
            await repo.abortUpload(s.id);
            throw e;
          });
          return repo.finishUpload(s.id);
        };
        return sendObject(reply, await record(image, writeMeta(request), finish));
      },
    );

    app.delete<UploadRoute>(
      '/v1/images/:id/uploads/:upload',
      { config, schema: { tags, summary: 'Abort an upload', params: UploadParams, querystring: ProjectQuery, response: withErrors({ 204: Type.Null() }) } },
      async (request, reply) => {
        const image = await getImage(request.params.id, request.query.project);
        await sessionOf(image, request.params.upload);
        await repo.abortUpload(request.params.upload);
        if ((image.status as ImageStatus).phase === 'uploading') await setStatus(image, { phase: 'pending' }, writeMeta(request));
        return reply.code(204).send();
      },
    );

    app.post<{ Params: Params; Querystring: Static<typeof ProjectQuery>; Body: Static<typeof ImportRequest> }>(
      '/v1/images/:id/import',
      { config, schema: { tags, summary: 'Fetch an image from an http(s) URL on the server; follow the status', params: IdParams, querystring: ProjectQuery, body: ImportRequest, response: withErrors({ 202: Type.Unknown() }) } },
      async (request, reply) => {
        const image = await getImage(request.params.id, request.query.project);
        refuseFilled(image);
        const meta = writeMeta(request);
        const expectedSha256 = request.body.sha256 ?? (image.spec as ImageSpec).sha256;
        const url = request.body.url;
        const accepted = await setStatus(image, { phase: 'uploading' }, meta);
        const job = record(image, meta, () => repo.importUrl(url, expectedSha256 ? { expectedSha256 } : {})).then(
          () => undefined,
          (e: unknown) => o.logger.warn({ image: image.name, project: image.project, err: e instanceof Error ? e.message : String(e) }, 'image import failed'),
        );
        imports.add(job);
        void job.finally(() => imports.delete(job));
        return sendObject(reply, accepted, 202);
      },
    );

    app.get<{ Params: Params; Querystring: Static<typeof ProjectQuery> }>(
      '/v1/images/:id/content',
      { config, schema: { tags, summary: "Download an image's stored blob (Range supported; ETag is its sha256)", params: IdParams, querystring: ProjectQuery, response: withErrors({}) } },
      async (request, reply) => {
        const image = await getImage(request.params.id, request.query.project);
        const sha = blobOf(image);
        if ((image.status as ImageStatus).phase !== 'ready' || !sha) throw new ApiError('conflict', `Cannot download image "${image.name}": it holds no content yet`);
        const opened = await repo.open(sha, request.headers.range);
        const status = (image.status as ImageStatus).format;
        reply
          .header('content-type', 'application/octet-stream')
          .header('accept-ranges', 'bytes')
          .header('etag', `"${sha}"`)
          .header('x-crowd-image-format', status ?? 'qcow2');
        if (opened.range) {
          reply.code(206).header('content-range', contentRange(opened.range, opened.size)).header('content-length', String(opened.range.end - opened.range.start + 1));
        } else reply.header('content-length', String(opened.size));
        return reply.send(opened.stream);
      },
    );
  };
}
