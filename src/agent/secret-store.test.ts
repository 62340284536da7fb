import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostNetworkView } from '../api/kinds/network.ts';
import type { AnyObject, Condition } from '../api/object.ts';
import { AuthChain } from '../auth/chain.ts';
import { NodeCredentialAuthenticator } from '../auth/node-credential.ts';
import { RoleAuthorizer } from '../auth/role-authorizer.ts';
import { hashToken, StaticTokenAuthenticator } from '../auth/static-token.ts';
import { systemClock } from '../base/clock.ts';
import { createLogger, silentLogger } from '../base/logger.ts';
import { MetadataService } from '../metadata/metadata-service.ts';
import { renderGuestDocuments } from '../metadata/guest-documents.ts';
import { buildApp } from '../server/app.ts';
import { ensureDefaultProject, ensureDefaultSite } from '../server/bootstrap.ts';
import { Enrolment } from '../server/enrolment.ts';
import { nodeRoutes } from '../server/routes/nodes.ts';
import { Scheduler } from '../server/scheduler/scheduler.ts';
import { lostMessage } from '../server/secrets/secret-keeper.ts';
import { TunnelRegistry } from '../server/tunnel/tunnel-registry.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { Store } from '../store/store.ts';
import { testAgent } from './test-agent.ts';
import { AgentCache } from './agent-cache.ts';
import { FakeDriver } from './drivers/fake-driver.ts';
import { guestInfo, MetadataGuests } from './metadata-guests.ts';
import { parseSecrets, SecretStore } from './secret-store.ts';
import { AgentTunnel } from './tunnel.ts';

const token = 'crowd_secret-test-admin';
const admin = { authorization: `Bearer ${token}` };
const secret = 'S3cr3t-9f27c1ab';
const privateValue = 'pr1vate-44e0d2';

/** A server over a SQLite file whose log lines are kept in `log`. */
async function server(dbPath: string, log: string[]) {
  const store = new SqliteStore({ path: dbPath });
  await ensureDefaultProject(store);
  await ensureDefaultSite(store);
  const enrolment = new Enrolment({ store, clock: systemClock });
  const logger = createLogger({ level: 'debug', destination: { write: (s: string) => void log.push(s) } });
  const app = await buildApp({
    store,
    auth: new AuthChain([new StaticTokenAuthenticator([{ name: 'admin', sha256: hashToken(token) }]), new NodeCredentialAuthenticator((id) => store.getCredential(id), systemClock)]),
    authorizer: new RoleAuthorizer(),
    logger,
    tunnels: new TunnelRegistry({ logger }),
    plugins: [nodeRoutes(enrolment)],
  });
  return { app, store, enrolment, close: async () => (await app.close(), await store.close()) };
}

/** The VM's SecretsDelivered condition once `pred` holds for it, or fails after 10 s. */
async function conditionWhen(store: Store, name: string, pred: (c: Condition | undefined) => boolean): Promise<Condition | undefined> {
  const cond = (o: AnyObject) => (o.status as { conditions?: Condition[] }).conditions?.find((c) => c.type === 'SecretsDelivered');
  const signal = AbortSignal.timeout(10_000);
  const cur = await store.get({ kind: 'vm', idOrName: name });
  if (pred(cond(cur))) return cond(cur);
  try {
    for await (const ev of store.watch({ kinds: ['vm'], fromRevision: cur.revision }, signal)) if (ev.type === 'put' && ev.object.name === name && pred(cond(ev.object))) return cond(ev.object);
  } catch (e) {
    if (!signal.aborted) throw e;
  }
  return assert.fail(`vm "${name}" never got the condition; status: ${JSON.stringify((await store.get({ kind: 'vm', idOrName: name })).status)}`);
}

test('secret parameters reach the host agent once and appear nowhere in the store file, history, audit, watch, answers or the log', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-secrets-'));
  const log: string[] = [];
  const s = await server(join(dir, 'store.db'), log);
  const ac = new AbortController();
  const cache = new AgentCache(join(dir, 'cache.db'));
  let running: Promise<unknown> = Promise.resolve();
  try {
    const by = { author: 'seed' };
    await s.store.create({ kind: 'machine-type', name: 'small', spec: { cpus: 1, memoryMiB: 512, diskGiB: 10 } }, by);
    await s.store.create({ kind: 'image', name: 'debian', spec: { arch: 'x86_64' } }, by);
    const url = await s.app.listen({ host: '127.0.0.1', port: 0 });
    writeFileSync(join(dir, 'debian.qcow2'), '');
    const { token: join_ } = await s.enrolment.createJoinToken({}, 'admin');
    const { credential } = await s.enrolment.enrol({ joinToken: join_, name: 'host-s', arch: 'x86_64', capacity: { cpus: 4, memoryMiB: 4096, diskGiB: 50 }, accel: 'tcg' });
    const driver = new FakeDriver();
    const agent = testAgent({ node: 'host-s', url: url, authorization: `Bearer ${credential}`, driver, cache, imageDir: dir });
    const secrets = new SecretStore({ dir: join(dir, 'secrets') });
    const connections = new EventEmitter();
    const tunnel = new AgentTunnel({
      server: url,
      node: 'host-s',
      authorization: () => `Bearer ${credential}`,
      driver,
      pipes: new MetadataService({ identify: () => undefined }),
      secrets: secrets,
      locks: agent.locks,
      clock: systemClock,
      logger: silentLogger(),
      random: () => 0,
      onConnected: () => connections.emit('up'),
    });
    const connected = once(connections, 'up');
    const scheduling = new Scheduler({ store: s.store, logger: silentLogger(), clock: systemClock }).run(ac.signal);
    running = Promise.all([agent.run(ac.signal), tunnel.run(ac.signal), scheduling]);
    await connected;
    const puts: string[] = [];
    secrets.onPut((id) => puts.push(id));

    const from = await s.store.revision();
    const watchText = (async () => {
      const res = await fetch(`${url}/v1/watch?kinds=vm&revision=${from}`, { headers: admin, signal: ac.signal });
      let text = '';
      const reader = res.body!.getReader();
      try {
        for (let r = await reader.read(); !r.done; r = await reader.read()) text += Buffer.from(r.value).toString('utf8');
      } catch {
        // the test ends the watch
      }
      return text;
    })();
    const answers: string[] = [];
    const spec = { image: 'debian', machineType: 'small', install: { mode: 'run', parameters: { role: 'db' }, privateParameters: { dbUser: privateValue } } };
    const created = await fetch(`${url}/v1/vms`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'db', spec, secretParameters: { rootPassword: secret } }) });
    answers.push(await created.text());
    assert.equal(created.status, 201, answers[0]);
    const delivered = await conditionWhen(s.store, 'db', (c) => c?.status === 'true');
    assert.equal(delivered?.reason, 'Delivered');
    const vm = await s.store.get({ kind: 'vm', idOrName: 'db' });
    assert.deepEqual(puts, [vm.id]);
    assert.deepEqual(secrets.get(vm.id), { rootPassword: secret });

    // The guest reads both at the crowd namespace, and nowhere else.
    const docs = renderGuestDocuments(guestInfo(vm, undefined, { region: 'crowd', availabilityZone: 'host-s' }, secrets.get(vm.id)));
    assert.deepEqual(JSON.parse(docs.get('crowd/v1/os/parameters/secret.json')!.body.toString()), { rootPassword: secret });
    assert.deepEqual(JSON.parse(docs.get('crowd/v1/os/parameters/private.json')!.body.toString()), { dbUser: privateValue });
    for (const [path, doc] of docs) {
      if (path === 'crowd/v1/os/parameters/secret.json' || path === 'crowd/v1/os/parameters/private.json') continue;
      const body = doc.body.toString();
      assert.ok(!body.includes(secret) && !body.includes(privateValue), `document "${path}" leaks a parameter`);
    }

    // An edit keeps the private value; the answers mask it.
    const shown = await (await fetch(`${url}/v1/vms/db`, { headers: admin })).json() as AnyObject;
    const put = await fetch(`${url}/v1/vms/db`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ ...shown, status: undefined, labels: { tier: 'data' } }) });
    answers.push(await put.text());
    assert.equal(put.status, 200, answers.at(-1));
    const stored = await s.store.get({ kind: 'vm', idOrName: 'db' });
    assert.deepEqual((stored.spec as typeof spec).install.privateParameters, { dbUser: privateValue });
    // A merge patch passes a new set (a reinstall would); it is delivered again, once.
    const patched = await fetch(`${url}/v1/vms/db`, { method: 'PATCH', headers: { ...admin, 'content-type': 'application/merge-patch+json' }, body: JSON.stringify({ secretParameters: { rootPassword: `${secret}-2` } }) });
    answers.push(await patched.text());
    assert.equal(patched.status, 200, answers.at(-1));
    await conditionWhen(s.store, 'db', (c) => c?.status === 'true' && Date.parse(c.lastTransition!) >= Date.parse(delivered!.lastTransition!) && puts.length === 2);
    assert.deepEqual(secrets.get(vm.id), { rootPassword: `${secret}-2` });
    const tooLong = await fetch(`${url}/v1/vms/db`, { method: 'PATCH', headers: { ...admin, 'content-type': 'application/merge-patch+json' }, body: JSON.stringify({ secretParameters: { rootPassword: secret.repeat(1000) } }) });
    answers.push(await tooLong.text());
    assert.equal(tooLong.status, 400, answers.at(-1));
    for (const path of ['/v1/vms/db', '/v1/vms', '/v1/vms/db/history', `/v1/vms/db/diff?from=${vm.revision}`, '/v1/audit']) {
      const res = await fetch(`${url}${path}`, { headers: admin });
      assert.equal(res.status, 200, path);
      answers.push(await res.text());
    }
    ac.abort();
    answers.push(await watchText);
    assert.match(answers.at(-1)!, /SecretsDelivered/);
    for (const text of answers) {
      assert.ok(!text.includes(secret), `an answer leaks the secret: ${text.slice(0, 300)}`);
      assert.ok(!text.includes(privateValue), `an answer leaks the private value: ${text.slice(0, 300)}`);
    }
    assert.ok(log.length > 0);
    assert.ok(!log.join('').includes(secret) && !log.join('').includes(privateValue), 'the server log leaks a parameter');
    await s.close();
    for (const f of ['store.db', 'store.db-wal', 'store.db-shm']) {
      if (existsSync(join(dir, f))) assert.ok(!readFileSync(join(dir, f)).includes(secret), `${f} holds the secret`);
    }
    assert.ok(readFileSync(join(dir, 'store.db')).includes(privateValue), 'the private value is stored');
    for (const f of ['cache.db', 'cache.db-wal']) {
      if (existsSync(join(dir, f))) assert.ok(!readFileSync(join(dir, f)).includes(secret), `the agent's ${f} holds the secret`);
    }
    assert.deepEqual(new SecretStore({ dir: join(dir, 'secrets') }).get(vm.id), { rootPassword: `${secret}-2` }, 'a restarted agent reads the last delivered set');
  } finally {
    ac.abort();
    await running;
    cache.close();
    await s.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('secrets a restarted server never delivered are reported lost on the VM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-secrets-'));
  const dbPath = join(dir, 'store.db');
  try {
    const first = await server(dbPath, []);
    await first.store.create({ kind: 'machine-type', name: 'small', spec: { cpus: 1, memoryMiB: 512, diskGiB: 10 } }, { author: 'seed' });
    await first.store.create({ kind: 'image', name: 'debian', spec: { arch: 'x86_64' } }, { author: 'seed' });
    const res = await first.app.inject({ method: 'POST', url: '/v1/vms', headers: admin, payload: { name: 'db', spec: { image: 'debian', machineType: 'small' }, secretParameters: { k: secret } } });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal((res.json<AnyObject>().status as { conditions?: Condition[] }).conditions?.find((c) => c.type === 'SecretsDelivered')?.reason, 'Pending');
    await first.close();
    const second = await server(dbPath, []);
    try {
      const lost = await conditionWhen(second.store, 'db', (c) => c?.reason === 'Lost');
      assert.deepEqual([lost?.status, lost?.message], ['false', lostMessage]);
    } finally {
      await second.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a secrets request carries a JSON object of strings, nothing else', () => {
  assert.deepEqual(parseSecrets(Buffer.from('{"a":"b"}').toString('base64')), { a: 'b' });
  assert.equal(parseSecrets(Buffer.from('{"a":1}').toString('base64')), undefined);
  assert.equal(parseSecrets(Buffer.from('["a"]').toString('base64')), undefined);
  assert.equal(parseSecrets('not base64 json'), undefined);
});

test('secrets that arrive after the guest is known are served to it from then on, and dropped with the VM', async () => {
  const secrets = new SecretStore();
  const guests = new MetadataGuests({ place: { region: 'crowd', availabilityZone: 'h' }, forget: () => undefined, listen: async () => undefined, logger: silentLogger(), secrets });
  const view: HostNetworkView = { networks: [{ project: 'p', name: 'lan', vni: 1, peers: [], spec: { ipv4: { subnet: '10.1.0.0/24' } } }], firewalls: [], members: [] };
  const vm = { id: 'vm_1', name: 'db', kind: 'vm', project: 'p', spec: { image: 'debian', machineType: 'small', nics: [{ network: 'lan' }] }, status: { node: 'h', addresses: [{ nic: 0, mac: '52:54:00:00:00:01', ipv4: '10.1.0.2' }] } } as unknown as AnyObject;
  const conn = { remoteAddress: '10.1.0.2', remotePort: 40000, localAddress: '169.254.169.254', localPort: 80 };
  await guests.update([vm], view, false);
  assert.deepEqual(guests.identify(conn)?.parameters.secret, {});
  secrets.put('vm_1', { k: secret });
  assert.deepEqual(guests.identify(conn)?.parameters.secret, { k: secret });
  await guests.update([vm], view, false);
  assert.deepEqual(guests.identify(conn)?.parameters.secret, { k: secret }, 'a VM update keeps the delivered secrets');
  await guests.update([], view, false);
  assert.equal(secrets.get('vm_1'), undefined);
});

test('a store with a folder keeps each VM in its own 0600 file inside a 0700 folder, and a new store reads them back', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-secret-files-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const folder = join(dir, 'secrets');
  mkdirSync(folder, { mode: 0o755 });
  const first = new SecretStore({ dir: folder });
  assert.equal(statSync(folder).mode & 0o777, 0o700, 'an existing folder is tightened');
  first.put('vm_1', { k: secret });
  first.put('vm_2', { a: 'b' });
  first.put('vm_1', { k: `${secret}-2` });
  assert.deepEqual(readdirSync(folder).sort(), ['vm_1.json', 'vm_2.json'], 'no temp file is left behind');
  for (const f of readdirSync(folder)) assert.equal(statSync(join(folder, f)).mode & 0o777, 0o600, f);
  const second = new SecretStore({ dir: folder });
  assert.deepEqual([second.get('vm_1'), second.get('vm_2')], [{ k: `${secret}-2` }, { a: 'b' }]);
  second.forget('vm_1');
  assert.deepEqual(readdirSync(folder), ['vm_2.json']);
  assert.equal(new SecretStore({ dir: folder }).get('vm_1'), undefined, 'a forgotten VM stays forgotten');
});

test('loading drops half-written temp files and unreadable files, and an id that is not a VM id writes nothing', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-secret-files-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'vm_1.json.123.tmp'), '{"k":"half');
  writeFileSync(join(dir, 'vm_2.json'), '{"k":1}');
  writeFileSync(join(dir, 'vm_3.json'), '{"k":"v"}', { mode: 0o644 });
  const store = new SecretStore({ dir });
  assert.deepEqual([store.get('vm_1'), store.get('vm_2'), store.get('vm_3')], [undefined, undefined, { k: 'v' }]);
  assert.deepEqual(readdirSync(dir), ['vm_3.json']);
  assert.equal(statSync(join(dir, 'vm_3.json')).mode & 0o777, 0o600, 'a loose file is tightened');
  assert.throws(() => store.put('../vm_4', { k: 'v' }), /Cannot keep secret parameters of vm "\.\.\/vm_4": not a VM id/);
  assert.equal(store.get('../vm_4'), undefined);
  assert.deepEqual(readdirSync(dir), ['vm_3.json']);
});

test('after an agent restart the guest still reads its delivered secrets from the metadata service', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-secret-files-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const view: HostNetworkView = { networks: [{ project: 'p', name: 'lan', vni: 1, peers: [], spec: { ipv4: { subnet: '127.0.0.0/8' } } }], firewalls: [], members: [] };
  const vm = { id: 'vm_1', name: 'db', kind: 'vm', project: 'p', spec: { image: 'debian', machineType: 'small', nics: [{ network: 'lan' }] }, status: { node: 'h', addresses: [{ nic: 0, mac: '52:54:00:00:00:01', ipv4: '127.0.0.1' }] } } as unknown as AnyObject;
  /** One agent lifetime: its secret store over the folder, its metadata guests and service on loopback. */
  const start = async () => {
    const secrets = new SecretStore({ dir });
    const service: MetadataService = new MetadataService({ identify: (c) => guests.identify(c) });
    const guests = new MetadataGuests({ place: { region: 'crowd', availabilityZone: 'h' }, forget: (id) => service.forget(id), listen: async () => undefined, logger: silentLogger(), secrets });
    await guests.update([vm], view, false);
    const [addr] = await service.listen([{ host: '127.0.0.1', port: 0 }]);
    const read = async () => (await fetch(`http://127.0.0.1:${addr!.port}/crowd/v1/os/parameters/secret.json`)).json();
    return { secrets, read, stop: () => service.close() };
  };
  const first = await start();
  first.secrets.put('vm_1', { rootPassword: secret });
  assert.deepEqual(await first.read(), { rootPassword: secret });
  await first.stop();
  const second = await start();
  t.after(() => second.stop());
  assert.deepEqual(await second.read(), { rootPassword: secret });
});
