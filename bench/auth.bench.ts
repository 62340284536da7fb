/**
 * Authentication benchmark (issue 7): requests/s of a cheap authenticated GET
 * (`GET /v1/projects`, one project) through the whole request path, once per
 * authenticator, in-process with `app.inject`, 8 requests in flight. The
 * public `/healthz` is the baseline without authentication.
 *
 * Usage: node --import tsx bench/auth.bench.ts [seconds per case]   (default 3)
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import type { FastifyInstance } from 'fastify';
import type { Authenticator } from '../src/auth/authenticator.ts';
import { formatBasic } from '../src/auth/basic-credentials.ts';
import { AuthChain } from '../src/auth/chain.ts';
import { HtpasswdAuthenticator } from '../src/auth/htpasswd.ts';
import { RoleAuthorizer } from '../src/auth/role-authorizer.ts';
import { ScopedTokenAuthenticator } from '../src/auth/scoped-token.ts';
import { tokenRevocation } from '../src/auth/server-auth.ts';
import { hashToken, StaticTokenAuthenticator } from '../src/auth/static-token.ts';
import { WebhookAuthenticator } from '../src/auth/webhook.ts';
import { systemClock } from '../src/base/clock.ts';
import { createLogger, silentLogger } from '../src/base/logger.ts';
import { buildApp } from '../src/server/app.ts';
import { ensureDefaultProject } from '../src/server/bootstrap.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { ms, summarize } from './stats.ts';

const seconds = Number(process.argv[2] ?? 3);
const inFlight = 8;
const dir = mkdtempSync(join(tmpdir(), 'crowd-auth-bench-'));
const logger = silentLogger();

/** Runs `inFlight` loops of one request for `seconds`; every answer must be 200. */
async function measure(app: FastifyInstance, url: string, authorization?: string): Promise<{ rps: number; p50: number; p99: number }> {
  const samples: number[] = [];
  const until = performance.now() + seconds * 1000;
  const headers = authorization ? { authorization } : {};
  const loop = async () => {
    while (performance.now() < until) {
      const t0 = performance.now();
      const res = await app.inject({ url, headers });
      if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}: ${res.body}`);
      samples.push(performance.now() - t0);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, loop));
  const elapsed = (performance.now() - t0) / 1000;
  return { rps: samples.length / elapsed, ...summarize(samples) };
}

interface Case {
  name: string;
  authenticator?: Authenticator;
  authorization?: string;
}

function htpasswdCase(name: string, hash: string): Case {
  const file = join(dir, `${name.replace(/\W+/g, '-')}.htpasswd`);
  writeFileSync(file, `bench:${hash}\n`);
  return { name, authenticator: new HtpasswdAuthenticator({ file, logger, users: { bench: [{ role: 'cluster-admin' }] } }), authorization: formatBasic('bench', 'bench pw') };
}

async function main(): Promise<void> {
  const store = new SqliteStore({ path: ':memory:' });
  await ensureDefaultProject(store);
  const scoped = new ScopedTokenAuthenticator({ keys: [randomBytes(32)], clock: systemClock, isRevoked: tokenRevocation(store), logger });
  const minted = scoped.issue({ sub: 'bench', project: '*', role: 'cluster-admin', scopes: ['*'], ttlMs: 3_600_000 });
  await store.putCredential({ id: minted.claims.id, type: 'token', hash: hashToken(minted.token), subject: 'bench', expiresAt: new Date(minted.claims.exp).toISOString(), createdAt: new Date().toISOString(), createdBy: 'bench', data: {} });
  const hook = createServer((req, res) => {
    req.resume().on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ allow: true, identity: { name: 'bench', clusterAdmin: true } }));
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/`;
  const cases: Case[] = [
    { name: 'none (/healthz, public)' },
    { name: 'static token', authenticator: new StaticTokenAuthenticator([{ name: 'bench', sha256: hashToken('crowd_bench') }]), authorization: 'Bearer crowd_bench' },
    { name: 'scoped token (+ store revocation check)', authenticator: scoped, authorization: `Bearer ${minted.token}` },
    { name: 'webhook, cached answers', authenticator: new WebhookAuthenticator({ url: hookUrl, clock: systemClock, logger: createLogger({ level: 'warn' }), cacheTtlMs: 3_600_000, timeoutMs: 10_000 }), authorization: 'Bearer webhook-bench' },
    htpasswdCase('htpasswd bcrypt cost 5', bcrypt.hashSync('bench pw', 5)),
    htpasswdCase('htpasswd bcrypt cost 10', bcrypt.hashSync('bench pw', 10)),
    htpasswdCase('htpasswd apr1 (-m)', execFileSync('htpasswd', ['-nbm', 'bench', 'bench pw'], { encoding: 'utf8' }).trim().split(':')[1]!),
    htpasswdCase('htpasswd sha512-crypt (-5)', execFileSync('htpasswd', ['-nb5', 'bench', 'bench pw'], { encoding: 'utf8' }).trim().split(':')[1]!),
  ];
  console.log(`Authenticated GET /v1/projects, ${inFlight} in flight, ${seconds} s per case (app.inject, in-memory SQLite)\n`);
  console.log(`${'authenticator'.padEnd(42)} ${'req/s'.padStart(8)}  ${'p50'.padStart(9)}  ${'p99'.padStart(9)}`);
  try {
    for (const c of cases) {
      const app = await buildApp({ store, auth: new AuthChain(c.authenticator ? [c.authenticator] : []), authorizer: new RoleAuthorizer(), logger });
      try {
        const r = await measure(app, c.authenticator ? '/v1/projects' : '/healthz', c.authorization);
        console.log(`${c.name.padEnd(42)} ${r.rps.toFixed(0).padStart(8)}  ${ms(r.p50).padStart(9)}  ${ms(r.p99).padStart(9)}`);
      } finally {
        await app.close();
      }
    }
  } finally {
    hook.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
