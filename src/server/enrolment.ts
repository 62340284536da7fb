import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseJoinToken, type EnrolRequest, type JoinToken, type JoinTokenCreate, type NodeCredential } from '../api/enrolment.ts';
import { ApiError } from '../api/errors.ts';
import type { AnyObject } from '../api/object.ts';
import type { Clock } from '../base/clock.ts';
import { ulid } from '../base/ids.ts';
import type { Store } from '../store/store.ts';

export interface EnrolmentOptions {
  store: Store;
  clock: Clock;
  /** sha256 (hex) of the server's TLS certificate; carried in join tokens so agents verify the server. */
  fingerprint?: string;
  /** Lifetime of node credentials; agents renew at half of it (default 24 h). */
  credentialTtlMs?: number;
}

const defaultSite = 'default';
const joinTtlMs = 3600 * 1000;

function secret(): string {
  return randomBytes(32).toString('base64url');
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function hashMatches(stored: string, text: string): boolean {
  const a = Buffer.from(stored, 'hex');
  const b = createHash('sha256').update(text).digest();
  return a.length === b.length && timingSafeEqual(a, b);
}

const refused = () => new ApiError('unauthenticated', 'Cannot enrol: the join token is unknown, used, expired or revoked');

/**
 * Host enrolment: admins mint one-time join tokens; a host trades one for a
 * node object and a credential for that node alone; the credential is renewed
 * over the agent's own connection; revoking a node touches no other.
 */
export class Enrolment {
  private readonly ttl: number;

  constructor(private readonly opts: EnrolmentOptions) {
    this.ttl = opts.credentialTtlMs ?? 24 * 3600 * 1000;
  }

  private iso(offsetMs = 0): string {
    return new Date(this.opts.clock.now() + offsetMs).toISOString();
  }

  async createJoinToken(req: JoinTokenCreate, createdBy: string): Promise<JoinToken> {
    const site = req.site ?? defaultSite;
    await this.opts.store.get({ kind: 'site', idOrName: site }).catch(() => {
      throw new ApiError('invalid', `Cannot create a join token: site "${site}" does not exist`, { details: [{ path: '/site', message: 'no such site' }] });
    });
    const id = ulid(this.opts.clock.now());
    const s = secret();
    const expiresAt = this.iso((req.ttlSeconds ?? joinTtlMs / 1000) * 1000);
    await this.opts.store.putCredential({
      id,
      type: 'join',
      hash: sha256(s),
      subject: site,
      expiresAt,
      createdAt: this.iso(),
      createdBy,
      data: { labels: req.labels ?? {} },
    });
    const token = `crowdjoin.${id}.${s}${this.opts.fingerprint ? `.${this.opts.fingerprint}` : ''}`;
    return { token, expiresAt };
  }

  async enrol(req: EnrolRequest): Promise<NodeCredential> {
    const parsed = parseJoinToken(req.joinToken);
    if (!parsed) throw refused();
    const join = await this.opts.store.getCredential(parsed.id);
    if (!join || join.type !== 'join' || !hashMatches(join.hash, parsed.secret) || join.revoked || join.usedAt || Date.parse(join.expiresAt) <= this.opts.clock.now())
      throw refused();
    const taken = await this.opts.store.get({ kind: 'node', idOrName: req.name }).catch(() => undefined);
    if (taken) throw new ApiError('already_exists', `Cannot enrol node "${req.name}": a node of that name exists`, { details: [{ path: '/name', message: 'already exists' }] });
    if (!(await this.opts.store.useCredential(join.id, this.iso()))) throw refused();
    const labels = { ...((join.data.labels as Record<string, string> | undefined) ?? {}), ...req.labels };
    const node = await this.opts.store.create(
      {
        kind: 'node',
        name: req.name,
        labels,
        spec: { site: join.subject, arch: req.arch, capacity: req.capacity },
        status: { phase: 'ready', lastSeen: this.iso(), accel: req.accel, ...(req.agentVersion ? { agentVersion: req.agentVersion } : {}) },
      },
      { author: `node:${req.name}`, reason: `enrolled with join token ${join.id}` },
    );
    return this.issue(node, `node:${req.name}`);
  }

  private async issue(node: AnyObject, by: string): Promise<NodeCredential> {
    const id = ulid(this.opts.clock.now());
    const s = secret();
    const expiresAt = this.iso(this.ttl);
    await this.opts.store.putCredential({ id, type: 'node', hash: sha256(s), subject: node.name, expiresAt, createdAt: this.iso(), createdBy: by, data: {} });
    return { node, credential: `crowdnode.${id}.${s}`, expiresAt };
  }

  /** A fresh credential for a node, asked for with its current one (which stays valid until it expires). */
  async renew(nodeName: string): Promise<NodeCredential> {
    const node = await this.opts.store.get({ kind: 'node', idOrName: nodeName });
    if ((node.status as { phase?: string }).phase === 'revoked') throw new ApiError('forbidden', `Cannot renew the credential of node "${nodeName}": it is revoked`);
    return this.issue(node, `node:${nodeName}`);
  }

  /** Invalidates every credential of one node and marks it revoked; no other node is touched. */
  async revoke(nodeName: string, by: string): Promise<AnyObject> {
    const node = await this.opts.store.get({ kind: 'node', idOrName: nodeName });
    await this.opts.store.revokeCredentials({ type: 'node', subject: node.name });
    return this.opts.store.updateStatus({ kind: 'node', idOrName: node.id }, { ...node.status, phase: 'revoked' }, { author: by, reason: 'revoked' });
  }
}
