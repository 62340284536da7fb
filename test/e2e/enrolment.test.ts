import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseJoinToken } from '../../src/api/enrolment.ts';
import { systemClock } from '../../src/base/clock.ts';
import { Client } from '../../src/client/client.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { crowd, objectWhen, seedAdminToken, startAgent, startServer, until, type CrowdProcess } from './crowd-processes.ts';

const token = 'crowd_e2e-enrolment-admin';

/** Join tokens that must not enrol, and revocation, through the real `crowd server`, `crowd agent` and CLI (fake VM driver). */
test('the crowd binary refuses forged, malformed, reused and expired join tokens, and crowd node revoke locks out one agent', { timeout: 120_000 }, async (t) => {
  const root = await mkdtemp(`/tmp/crowd-e2e-enrol-${process.pid}-`);
  const serverDir = join(root, 'server');
  const procs: CrowdProcess[] = [];
  t.after(async () => {
    for (const p of procs) await p.stop('SIGKILL');
    await rm(root, { recursive: true, force: true });
  });
  mkdirSync(serverDir);
  seedAdminToken(serverDir, token);
  const { proc, url } = await startServer(serverDir);
  procs.push(proc);
  const client = new Client({ baseUrl: url, authorization: `Bearer ${token}` });
  const joinToken = async (...flags: string[]) => {
    const r = await crowd(url, token, ['node', 'join-token', ...flags]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  const agent = (name: string, joinToken?: string) => {
    const dataDir = join(root, name);
    const p = startAgent({ dataDir, imageDir: join(root, 'images'), server: url, name, driver: 'fake', ...(joinToken ? { joinToken } : {}) });
    procs.push(p);
    return { p, dataDir };
  };
  /** An agent that must refuse to start: exits 1 with `message`, keeps no identity, creates no node. */
  const refused = async (name: string, joinToken: string, message: RegExp) => {
    const { p, dataDir } = agent(name, joinToken);
    const [code] = (await once(p.child, 'exit')) as [number | null];
    assert.equal(code, 1, p.output());
    assert.match(p.output(), message);
    assert.ok(!existsSync(join(dataDir, 'identity.json')), 'no identity kept');
    await assert.rejects(client.nodes.get(name), (e: { code?: string }) => e.code === 'not_found');
  };
  const unusable = /Cannot enrol: the join token is unknown, used, expired or revoked/;

  await t.test('a forged or malformed join token enrols nothing', async () => {
    const good = await joinToken();
    const parsed = parseJoinToken(good)!;
    const flipped = `${parsed.secret.slice(0, -1)}${parsed.secret.endsWith('A') ? 'B' : 'A'}`;
    await refused('forged', `crowdjoin.${parsed.id}.${flipped}`, unusable);
    await refused('unknown', `crowdjoin.${'0'.repeat(26)}.${parsed.secret}`, unusable);
    await refused('malformed', 'crowdjoin.not-a-token', /Cannot enrol: the join token is malformed/);
  });

  let first: ReturnType<typeof agent>;
  await t.test('a join token enrols one host; used again it is refused', async () => {
    const single = await joinToken('--label', 'rack=r1');
    first = agent('host-a', single);
    const node = await objectWhen(client, 'node', 'host-a', (n) => n.status.phase === 'ready', 30_000);
    assert.deepEqual(node.labels, { rack: 'r1' });
    await until('the identity file', () => existsSync(join(first.dataDir, 'identity.json')), 30_000);
    await refused('host-b', single, unusable);
  });

  await t.test('an expired join token is refused', async () => {
    const soon = await joinToken('--ttl', '1m');
    // Time travel instead of a minute's wait: the server keeps join tokens in its SQLite store, read on every enrolment.
    const store = new SqliteStore({ path: join(serverDir, 'crowd.db'), clock: systemClock });
    try {
      const cred = (await store.getCredential(parseJoinToken(soon)!.id))!;
      await store.putCredential({ ...cred, expiresAt: new Date(Date.now() - 1000).toISOString() });
    } finally {
      await store.close();
    }
    await refused('late', soon, unusable);
  });

  await t.test('crowd node revoke locks out that agent only', async () => {
    const second = agent('host-c', await joinToken());
    await objectWhen(client, 'node', 'host-c', (n) => n.status.phase === 'ready', 30_000);
    const r = await crowd(url, token, ['node', 'revoke', 'host-a']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'node "host-a" revoked\n');
    const since = Date.now();
    // host-c keeps its heartbeat; host-a's next one is refused and its node stays revoked.
    await objectWhen(client, 'node', 'host-c', (n) => Date.parse(String(n.status.lastSeen)) > since, 30_000);
    await until('host-a to be refused', () => /heartbeat failed/.test(first.p.output()), 30_000);
    assert.equal((await client.nodes.get('host-a')).status.phase, 'revoked');
    assert.doesNotMatch(second.p.output(), /heartbeat failed/);
  });
});
