import { createServer, STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { systemClock, type Clock } from '../base/clock.ts';
import { silentLogger, type Logger } from '../base/logger.ts';
import { pipeReadPath, pipeWritePath } from './crowd.ts';
import type { Doc, Documents } from './documents.ts';
import { documentKey, renderGuestDocuments } from './guest-documents.ts';
import type { GuestInfo } from './guest-info.ts';
import { GuestPipe } from './guest-pipe.ts';
import { maxPathLength, parseRequestPath } from './request-path.ts';
import { parseTokenTtl, TokenAuthority } from './token-authority.ts';

/** What the service knows of a caller: the socket, and the interface of the listener it came in on. Never anything the guest sends. */
export interface Connection {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  interface?: string;
}

/** One address to listen on; `interface` is passed to `identify` for connections it accepts (e.g. the tap of an `fe80::a9fe:a9fe%tap3` listener). */
export interface Listen {
  host: string;
  port: number;
  interface?: string;
}

export interface MetadataServiceOptions {
  /** Maps a connection to its guest (the agent: listener interface + pinned MAC/IP); undefined → 403, nothing served. */
  identify: (conn: Connection) => GuestInfo | undefined;
  logger?: Logger;
  clock?: Clock;
  tokens?: TokenAuthority;
  /** Largest request head (default 8 KiB); larger gets 431. */
  maxHeaderBytes?: number;
  /** Largest request body, i.e. one pipe write (default 64 KiB); larger gets 413. */
  maxBodyBytes?: number;
  /** Bytes each pipe direction may hold (default 1 MiB). */
  pipeCapBytes?: number;
  /** Whole-request deadline (default 10 s); headers must arrive within half of it. */
  requestTimeoutMs?: number;
}

const tokenPath = 'latest/api/token';
/** Request targets remembered with their route; a guest sending endless distinct paths only fills it once. */
const maxRoutes = 4096;

/** A request target resolved: its path key, and the document key when it names a document version we serve. */
type Route = { ok: true; key: string; docKey: string | undefined } | { ok: false; status: 400 | 414 };
const methods = new Set(['GET', 'PUT', 'POST']);

/**
 * The guest-facing metadata service (EC2, OpenStack and crowdcloud
 * namespaces) on node:http. Each guest's documents are rendered once per
 * GuestInfo object (the agent hands a new object when a VM changes), so a
 * request is a map lookup. The guest is identified only by `identify`.
 *
 * IMDSv2: `PUT /latest/api/token` (TTL header 1–21600 s, else 400; any
 * `X-Forwarded-For` → 403). A GET carrying `X-aws-ec2-metadata-token` must
 * carry a valid one (else 401); without one it is served unless the guest's
 * `imdsTokenRequired` is set (then 401, in every namespace). The IP TTL /
 * hop limit 1 of token responses is set by the net layer's nftables rules,
 * not here.
 *
 * Logs: refusals, token grants and pipe writes at info, plain reads at
 * debug (the entry is not even built unless debug is on); never header
 * values (tokens) or bodies (secrets). A hot read is a cached route, a map
 * lookup for the guest and one for its document, and prebuilt headers.
 */
export class MetadataService {
  private readonly identify: MetadataServiceOptions['identify'];
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly tokens: TokenAuthority;
  private readonly maxHeaderBytes: number;
  private readonly maxBodyBytes: number;
  private readonly pipeCapBytes: number;
  private readonly requestTimeoutMs: number;
  private readonly documents = new WeakMap<GuestInfo, Documents>();
  private readonly pipes = new Map<string, GuestPipe>();
  private readonly servers = new Map<string, Server>();
  private readonly routes = new Map<string, Route>();
  private readonly heads = new WeakMap<Doc, OutgoingHttpHeaders>();

  constructor(opts: MetadataServiceOptions) {
    this.identify = opts.identify;
    this.logger = opts.logger ?? silentLogger();
    this.clock = opts.clock ?? systemClock;
    this.tokens = opts.tokens ?? new TokenAuthority({ clock: this.clock });
    this.maxHeaderBytes = opts.maxHeaderBytes ?? 8 * 1024;
    this.maxBodyBytes = opts.maxBodyBytes ?? 64 * 1024;
    this.pipeCapBytes = opts.pipeCapBytes ?? 1024 * 1024;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 10_000;
  }

  /** Starts one listener per address; resolves with the bound addresses (port 0 picks one). An address already listened on is refused. */
  async listen(addresses: Listen[]): Promise<AddressInfo[]> {
    const bound: AddressInfo[] = [];
    for (const a of addresses) {
      if (this.servers.has(listenKey(a))) throw new Error(`Cannot listen on ${listenKey(a)}: already listening there`);
      const server = createServer(
        {
          maxHeaderSize: this.maxHeaderBytes,
          requestTimeout: this.requestTimeoutMs,
          headersTimeout: this.requestTimeoutMs / 2,
          connectionsCheckingInterval: Math.min(1000, this.requestTimeoutMs / 4),
          keepAliveTimeout: 5000,
        },
        (req, res) => this.handle(req, res, a.interface),
      );
      server.maxHeadersCount = 64;
      server.timeout = this.requestTimeoutMs * 3;
      server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.clientError(err, socket));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: a.host, port: a.port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const at = server.address() as AddressInfo;
      this.servers.set(listenKey({ host: a.host, port: at.port }), server);
      bound.push(at);
    }
    return bound;
  }

  /** Stops the listener of one address (as bound: port 0 became a real port), dropping its connections; the others keep serving. */
  async unlisten(address: Pick<Listen, 'host' | 'port'>): Promise<void> {
    const key = listenKey(address);
    const server = this.servers.get(key);
    this.servers.delete(key);
    if (server) await stopServer(server);
  }

  /** Stops every listener and drops open connections. */
  async close(): Promise<void> {
    const servers = [...this.servers.values()];
    this.servers.clear();
    await Promise.all(servers.map(stopServer));
  }

  /** The host↔guest pipe of a VM (created on first use); the agent reads and writes the host side. */
  pipe(instanceId: string): GuestPipe {
    let p = this.pipes.get(instanceId);
    if (!p) {
      p = new GuestPipe({ capBytes: this.pipeCapBytes });
      this.pipes.set(instanceId, p);
    }
    return p;
  }

  /** Drops a VM's pipe (when it is deleted); its documents go with its GuestInfo object. */
  forget(instanceId: string): void {
    this.pipes.delete(instanceId);
  }

  /** The rendered documents of a guest, from the cache while the GuestInfo object is the same. */
  documentsOf(guest: GuestInfo): Documents {
    let docs = this.documents.get(guest);
    if (!docs) {
      docs = renderGuestDocuments(guest);
      this.documents.set(guest, docs);
    }
    return docs;
  }

  private handle(req: IncomingMessage, res: ServerResponse, iface: string | undefined): void {
    const started = this.clock.now();
    const conn: Connection = {
      remoteAddress: unmapped(req.socket.remoteAddress ?? ''),
      remotePort: req.socket.remotePort ?? 0,
      localAddress: unmapped(req.socket.localAddress ?? ''),
      localPort: req.socket.localPort ?? 0,
    };
    if (iface !== undefined) conn.interface = iface;
    let guest: GuestInfo | undefined;
    const done = (status: number, doc?: Doc, headers?: Record<string, string>) => {
      if (doc && status === 200 && !headers) res.writeHead(200, this.headersOf(doc)).end(doc.body);
      else {
        const body = doc?.body ?? (status >= 400 ? Buffer.from(`${status} - ${STATUS_CODES[status]}\n`) : Buffer.alloc(0));
        res.writeHead(status, { 'Content-Type': doc?.type ?? 'text/plain; charset=utf-8', 'Content-Length': body.length, ...headers }).end(body);
      }
      const level = status === 200 && req.method === 'GET' ? 'debug' : 'info';
      if (!this.logger.isLevelEnabled(level)) return;
      this.logger[level]({ method: req.method, path: loggable(req.url), status, remote: conn.remoteAddress, instanceId: guest?.instanceId, ms: this.clock.now() - started }, 'metadata request');
    };
    try {
      const method = req.method ?? '';
      if (!methods.has(method)) return done(405, undefined, { Allow: 'GET, PUT, POST' });
      const declared = Number(req.headers['content-length'] ?? 0);
      if (!(declared <= this.maxBodyBytes)) return done(413, undefined, { Connection: 'close' });
      const path = this.route(req.url ?? '');
      if (!path.ok) return done(path.status);
      guest = this.identify(conn);
      if (!guest) return done(403);
      const key = path.key;
      if (key === tokenPath) return this.issueToken(req, guest, done);
      const token = req.headers['x-aws-ec2-metadata-token'];
      if (token !== undefined ? typeof token !== 'string' || !this.tokens.verify(token, guest.instanceId) : guest.imdsTokenRequired) {
        return done(401);
      }
      if (key === pipeWritePath) {
        if (method !== 'POST') return done(405, undefined, { Allow: 'POST' });
        return this.pipeWrite(req, this.pipe(guest.instanceId), done);
      }
      if (method !== 'GET') return done(405, undefined, { Allow: 'GET' });
      if (key === pipeReadPath) {
        const data = this.pipe(guest.instanceId).guestRead(this.maxBodyBytes);
        return data ? done(200, { body: data, type: 'application/octet-stream' }) : done(204);
      }
      const doc = path.docKey === undefined ? undefined : this.documentsOf(guest).get(path.docKey);
      return doc ? done(200, doc) : done(404);
    } catch (e) {
      this.logger.error({ err: e instanceof Error ? e.message : String(e), path: loggable(req.url) }, 'metadata request failed');
      if (!res.headersSent) done(500);
      else res.destroy();
    }
  }

  /** A request target's checked path and document key, cached for the targets guests keep asking for (the same for every guest). */
  private route(url: string): Route {
    let r = this.routes.get(url);
    if (r) return r;
    const path = parseRequestPath(url);
    r = path.ok ? { ok: true, key: path.segments.join('/'), docKey: documentKey(path.segments) } : path;
    if (this.routes.size < maxRoutes && url.length <= maxPathLength) this.routes.set(url, r);
    return r;
  }

  /** The response headers of a document, built once per document. */
  private headersOf(doc: Doc): OutgoingHttpHeaders {
    let h = this.heads.get(doc);
    if (!h) {
      h = { 'Content-Type': doc.type, 'Content-Length': doc.body.length };
      this.heads.set(doc, h);
    }
    return h;
  }

  private issueToken(req: IncomingMessage, guest: GuestInfo, done: (status: number, doc?: Doc, headers?: Record<string, string>) => void): void {
    if (req.method !== 'PUT') return done(405, undefined, { Allow: 'PUT' });
    if (req.headers['x-forwarded-for'] !== undefined) return done(403);
    const ttl = parseTokenTtl(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
    if (ttl === undefined) return done(400);
    const token = this.tokens.issue(guest.instanceId, ttl);
    done(200, { body: Buffer.from(token), type: 'text/plain; charset=utf-8' }, { 'X-aws-ec2-metadata-token-ttl-seconds': String(ttl) });
  }

  private pipeWrite(req: IncomingMessage, pipe: GuestPipe, done: (status: number, doc?: Doc, headers?: Record<string, string>) => void): void {
    const room = Math.min(this.maxBodyBytes, this.pipeCapBytes - pipe.pending().toHost);
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > room) {
        over = true;
        chunks.length = 0;
        done(413, undefined, { Connection: 'close' });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (over) return;
      try {
        pipe.guestWrite(Buffer.concat(chunks));
        done(204);
      } catch {
        done(413);
      }
    });
    req.on('error', () => req.socket.destroy());
  }

  private clientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    this.logger.info({ status, remote: unmapped(socket.remoteAddress ?? ''), reason: err.code }, 'metadata request refused');
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }
}

/** The key of a listener: one per host and port (a scoped host such as `fe80::a9fe:a9fe%tap3` is its own). */
function listenKey(a: Pick<Listen, 'host' | 'port'>): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

function stopServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** `::ffff:10.0.0.5` → `10.0.0.5`, so identify sees one form per IPv4 address. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** A request target fit for a log line: at most 200 characters. */
function loggable(url: string | undefined): string {
  const u = url ?? '';
  return u.length > 200 ? `${u.slice(0, 200)}…` : u;
}
