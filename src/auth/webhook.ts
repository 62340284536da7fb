import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { Clock } from '../base/clock.ts';
import type { Logger } from '../base/logger.ts';
import type { Authenticator, AuthRequest, AuthResult, Identity } from './authenticator.ts';

/** What the webhook must answer (HTTP 200, JSON); anything else denies. */
export const WebhookAnswer = Type.Object({
  allow: Type.Boolean(),
  identity: Type.Optional(
    Type.Object({
      name: Type.String({ minLength: 1, maxLength: 256 }),
      clusterAdmin: Type.Optional(Type.Boolean()),
      roles: Type.Optional(Type.Record(Type.String(), Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]))),
      scopes: Type.Optional(Type.Array(Type.String())),
    }),
  ),
});
export type WebhookAnswer = Static<typeof WebhookAnswer>;

export interface WebhookOptions {
  url: string;
  clock: Clock;
  logger: Logger;
  /** How long the webhook may take before the request is denied (default 2 s). */
  timeoutMs?: number;
  /** How long an answer is reused for the same header and request summary (default 10 s). */
  cacheTtlMs?: number;
  /** At most this many answers are kept (default 1000). */
  cacheSize?: number;
}

const maxAnswerBytes = 64 * 1024;

/**
 * Asks an external service: POSTs `{authorization, method, path, project,
 * source}` as JSON and takes `{allow, identity}` back. Claims every non-empty
 * header, so it belongs last in the chain. Timeouts, errors, redirects and
 * malformed answers deny (fail closed). Answers are cached briefly, keyed by a
 * hash of the header and summary, so the header itself is never kept.
 */
export class WebhookAuthenticator implements Authenticator {
  readonly name = 'webhook';
  private readonly cache = new Map<string, { until: number; result: AuthResult }>();

  constructor(private readonly opts: WebhookOptions) {}

  async authenticate(req: AuthRequest): Promise<AuthResult> {
    if (req.authorization === '') return { outcome: 'skip' };
    const summary = { authorization: req.authorization, method: req.method, path: req.path, project: req.project ?? null, source: req.source };
    const body = JSON.stringify(summary);
    const key = createHash('sha256').update(body).digest('hex');
    const now = this.opts.clock.now();
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return hit.result;
    this.cache.delete(key);
    const result = await this.ask(body);
    if (result) {
      this.cache.set(key, { until: now + (this.opts.cacheTtlMs ?? 10_000), result });
      if (this.cache.size > (this.opts.cacheSize ?? 1000)) this.cache.delete(this.cache.keys().next().value!);
    }
    return result ?? { outcome: 'deny', reason: 'webhook unavailable' };
  }

  /** The webhook's decision, or undefined when it gave none (not cached). */
  private async ask(body: string): Promise<AuthResult | undefined> {
    let answer: unknown;
    try {
      const res = await fetch(this.opts.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body,
        redirect: 'error',
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 2000),
      });
      const text = await readLimited(res);
      if (res.status !== 200) throw new Error(`HTTP status ${res.status}`);
      answer = JSON.parse(text);
    } catch (e) {
      this.opts.logger.warn({ url: this.opts.url, err: (e as Error).message }, 'Cannot ask the auth webhook: denying');
      return undefined;
    }
    if (!Value.Check(WebhookAnswer, answer) || (answer.allow && !answer.identity)) {
      this.opts.logger.warn({ url: this.opts.url }, 'The auth webhook gave a malformed answer: denying');
      return undefined;
    }
    if (!answer.allow) return { outcome: 'deny', reason: 'webhook denied' };
    const identity: Identity = { ...answer.identity!, authenticator: this.name };
    return { outcome: 'ok', identity };
  }
}

async function readLimited(res: Response): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body?.getReader();
  for (let r = await reader?.read(); r && !r.done; r = await reader!.read()) {
    size += r.value.length;
    if (size > maxAnswerBytes) {
      await reader!.cancel();
      throw new Error(`answer larger than ${maxAnswerBytes} bytes`);
    }
    chunks.push(r.value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
