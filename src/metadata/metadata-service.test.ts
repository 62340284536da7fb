import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { FakeClock } from '../base/clock.ts';
import { createLogger } from '../base/logger.ts';
import { exampleGuest } from './example-guest.ts';
import type { GuestInfo } from './guest-info.ts';
import { MetadataService, type Connection } from './metadata-service.ts';

const secret = 'SECRET-VALUE-d41d8cd98f';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Sends raw bytes and returns everything the server writes before it closes (or the deadline passes). */
function raw(port: number, bytes: string | Buffer, deadlineMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), deadlineMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.end(bytes);
  });
}

/** A service on two loopback ports: port A is guest A, port B is guest B, nothing else is known. */
async function start(
  t: { after: (fn: () => Promise<void>) => void },
  opts: { guestA?: Partial<GuestInfo>; maxBodyBytes?: number; pipeCapBytes?: number; requestTimeoutMs?: number } = {},
) {
  const clock = new FakeClock();
  const lines: string[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  });
  let guestA = exampleGuest(opts.guestA);
  const guestB = exampleGuest({ instanceId: 'vm_B', name: 'db-1', hostname: 'db-1', userData: '#cloud-config\n# B\n' });
  const seen: Connection[] = [];
  const ports: number[] = [];
  const service = new MetadataService({
    logger,
    clock,
    maxBodyBytes: opts.maxBodyBytes ?? 1024,
    pipeCapBytes: opts.pipeCapBytes ?? 2048,
    requestTimeoutMs: opts.requestTimeoutMs ?? 10_000,
    identify: (conn) => {
      seen.push(conn);
      if (conn.remoteAddress !== '127.0.0.1') return undefined;
      if (conn.localPort === ports[0]) return guestA;
      if (conn.localPort === ports[1]) return guestB;
      return undefined;
    },
  });
  const bound = await service.listen([
    { host: '127.0.0.1', port: 0, interface: 'tapA' },
    { host: '127.0.0.1', port: 0, interface: 'tapB' },
    { host: '127.0.0.1', port: 0 },
  ]);
  ports.push(...bound.map((b) => b.port));
  t.after(() => service.close());
  return {
    service,
    clock,
    lines,
    seen,
    a: ports[0]!,
    b: ports[1]!,
    unknown: ports[2]!,
    setGuestA: (g: GuestInfo) => {
      guestA = g;
    },
  };
}

test('EC2 paths answer for every version, directories with or without a slash, 404 for the rest', async (t) => {
  const s = await start(t);
  assert.equal((await call(s.a, '/2009-04-04/meta-data/instance-id')).body, 'vm_01JTESTGUEST0000000000000A');
  assert.equal((await call(s.a, '/latest/meta-data/instance-id')).body, 'vm_01JTESTGUEST0000000000000A');
  const root = await call(s.a, '/');
  assert.ok(root.body.split('\n').includes('2021-03-23'));
  assert.equal((await call(s.a, '/2021-03-23/meta-data/placement/')).body, 'availability-zone\nregion');
  assert.equal((await call(s.a, '/2021-03-23/meta-data/placement')).body, 'availability-zone\nregion');
  assert.equal((await call(s.a, '/latest/user-data')).body, '#cloud-config\nruncmd:\n  - echo hello\n');
  for (const missing of ['/latest/meta-data/nope', '/1999-01-01/meta-data/', '/meta-data/instance-id', '/openstack/2099-01-01/meta_data.json']) {
    const r = await call(s.a, missing);
    assert.equal(r.status, 404, missing);
    assert.equal(r.body, '404 - Not Found\n');
  }
});

test('each guest gets only its own documents, and the listener interface reaches identify', async (t) => {
  const s = await start(t);
  assert.equal((await call(s.a, '/latest/meta-data/hostname')).body, 'web-1');
  assert.equal((await call(s.b, '/latest/meta-data/hostname')).body, 'db-1');
  assert.equal((await call(s.b, '/openstack/latest/user_data')).body, '#cloud-config\n# B\n');
  assert.equal(s.seen[0]?.interface, 'tapA');
  assert.equal(s.seen[0]?.remoteAddress, '127.0.0.1');
  assert.equal(s.seen[1]?.interface, 'tapB');
});

test('an unknown caller gets 403 and no data on every path', async (t) => {
  const s = await start(t);
  for (const path of ['/', '/latest/meta-data/instance-id', '/openstack/latest/meta_data.json', '/crowd/v1/os/parameters/secret.json', '/crowd/v1/pipe/read']) {
    const r = await call(s.unknown, path);
    assert.equal(r.status, 403, path);
    assert.equal(r.body, '403 - Forbidden\n');
  }
  assert.equal((await call(s.unknown, '/latest/api/token', { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' } })).status, 403);
});

test('rendered documents are reused while the GuestInfo object is unchanged and redone when it changes', async (t) => {
  const s = await start(t);
  const g = exampleGuest();
  s.setGuestA(g);
  assert.equal(s.service.documentsOf(g), s.service.documentsOf(g));
  s.setGuestA({ ...g, hostname: 'renamed' });
  assert.equal((await call(s.a, '/latest/meta-data/hostname')).body, 'renamed');
});

test('IMDSv2: a PUT with a valid TTL gets a token that works until it expires', async (t) => {
  const s = await start(t);
  const put = await call(s.a, '/latest/api/token', { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '30' } });
  assert.equal(put.status, 200);
  assert.equal(put.headers['x-aws-ec2-metadata-token-ttl-seconds'], '30');
  const token = put.body;
  const withToken = (port: number, tok: string) => call(port, '/latest/meta-data/instance-id', { headers: { 'X-aws-ec2-metadata-token': tok } });
  assert.equal((await withToken(s.a, token)).status, 200);
  assert.equal((await withToken(s.b, token)).status, 401, 'a token is bound to its guest');
  assert.equal((await withToken(s.a, 'not-a-token')).status, 401);
  assert.equal((await withToken(s.a, '')).status, 401);
  s.clock.advance(30_000);
  assert.equal((await withToken(s.a, token)).status, 401, 'expired');
  assert.equal((await call(s.a, '/latest/meta-data/instance-id')).status, 200, 'token-less access stays on by default');
});

test('IMDSv2: missing or out-of-range TTLs get 400, X-Forwarded-For gets 403, other methods 405', async (t) => {
  const s = await start(t);
  const put = (headers: Record<string, string>) => call(s.a, '/latest/api/token', { method: 'PUT', headers });
  assert.equal((await put({})).status, 400);
  for (const ttl of ['0', '21601', '-5', 'abc', '1e3', '']) assert.equal((await put({ 'X-aws-ec2-metadata-token-ttl-seconds': ttl })).status, 400, ttl);
  assert.equal((await put({ 'X-aws-ec2-metadata-token-ttl-seconds': '21600' })).status, 200);
  const fwd = await put({ 'X-aws-ec2-metadata-token-ttl-seconds': '60', 'X-Forwarded-For': '10.0.0.9' });
  assert.equal(fwd.status, 403);
  assert.equal(fwd.body, '403 - Forbidden\n');
  assert.equal((await call(s.a, '/latest/api/token')).status, 405);
});

test('IMDSv2 required: token-less GETs get 401 in every namespace, token-carrying ones succeed', async (t) => {
  const s = await start(t, { guestA: { imdsTokenRequired: true } });
  for (const path of ['/latest/meta-data/instance-id', '/openstack/latest/meta_data.json', '/crowd/v1/os/parameters/secret.json', '/crowd/v1/pipe/read']) {
    const r = await call(s.a, path);
    assert.equal(r.status, 401, path);
    assert.equal(r.body, '401 - Unauthorized\n');
  }
  const token = (await call(s.a, '/latest/api/token', { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' } })).body;
  assert.equal((await call(s.a, '/latest/meta-data/instance-id', { headers: { 'X-aws-ec2-metadata-token': token } })).status, 200);
  assert.equal((await call(s.b, '/latest/meta-data/instance-id')).status, 200, 'guest B did not ask for tokens');
});

test('methods other than GET, PUT and POST get 405, and PUT or POST elsewhere too', async (t) => {
  const s = await start(t);
  for (const method of ['DELETE', 'PATCH', 'HEAD', 'OPTIONS']) {
    const r = await call(s.a, '/latest/meta-data/', { method });
    assert.equal(r.status, 405, method);
    assert.equal(r.headers.allow, 'GET, PUT, POST');
  }
  assert.equal((await call(s.a, '/latest/meta-data/', { method: 'PUT' })).status, 405);
  assert.equal((await call(s.a, '/latest/meta-data/', { method: 'POST', body: 'x' })).status, 405);
  assert.equal((await call(s.a, '/crowd/v1/pipe/write')).status, 405);
  assert.equal((await call(s.a, '/crowd/v1/pipe/read', { method: 'POST' })).status, 405);
});

test('the pipe carries bytes both ways, each read consuming them, empty reads answer 204', async (t) => {
  const s = await start(t);
  const pipe = s.service.pipe('vm_01JTESTGUEST0000000000000A');
  assert.equal((await call(s.a, '/crowd/v1/pipe/read')).status, 204);
  pipe.hostWrite(Buffer.from('to guest'));
  const r = await call(s.a, '/crowd/v1/pipe/read');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'to guest');
  assert.equal(r.headers['content-type'], 'application/octet-stream');
  assert.equal((await call(s.a, '/crowd/v1/pipe/read')).status, 204);
  assert.equal((await call(s.b, '/crowd/v1/pipe/read')).status, 204, 'guest B has its own pipe');
  assert.equal((await call(s.a, '/crowd/v1/pipe/write', { method: 'POST', body: 'to host' })).status, 204);
  assert.equal(pipe.hostRead()?.toString(), 'to host');
});

test('pipe writes beyond the body or pipe cap get 413, queue nothing, and the service stays up', async (t) => {
  const s = await start(t, { maxBodyBytes: 1024, pipeCapBytes: 1500 });
  const pipe = s.service.pipe('vm_01JTESTGUEST0000000000000A');
  const big = await call(s.a, '/crowd/v1/pipe/write', { method: 'POST', body: Buffer.alloc(4096, 'x') });
  assert.equal(big.status, 413);
  assert.equal((await call(s.a, '/crowd/v1/pipe/write', { method: 'POST', body: Buffer.alloc(1000, 'a') })).status, 204);
  assert.equal((await call(s.a, '/crowd/v1/pipe/write', { method: 'POST', body: Buffer.alloc(600, 'b') })).status, 413, 'pipe holds 1000 of 1500');
  const chunked = await raw(s.a, `POST /crowd/v1/pipe/write HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${'400\r\n' + 'c'.repeat(1024) + '\r\n'}${'400\r\n' + 'c'.repeat(1024) + '\r\n'}0\r\n\r\n`);
  assert.match(chunked, /^HTTP\/1\.1 413 /);
  assert.equal(pipe.pending().toHost, 1000);
  assert.equal((await call(s.a, '/latest/meta-data/instance-id')).status, 200);
});

test('malformed paths, traversal and absurd lengths get 400/414 without data', async (t) => {
  const s = await start(t);
  for (const path of ['/latest/../crowd/v1/os/parameters/secret.json', '/latest/%2e%2e/crowd', '/crowd/v1/os/parameters/..%2fsecret.json', '//latest', '/latest/.x']) {
    const r = await call(s.a, path);
    assert.equal(r.status, 400, path);
    assert.ok(!r.body.includes(secret));
  }
  assert.equal((await call(s.a, `/latest/${'x'.repeat(2000)}`)).status, 414);
  assert.match(await raw(s.a, 'GET /latest/meta data HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 400 /);
  assert.match(await raw(s.a, 'GET latest HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400 /);
  assert.match(await raw(s.a, 'BLAH\r\n\r\n'), /^HTTP\/1\.1 400 /);
  assert.equal((await call(s.a, '/latest/meta-data/instance-id')).status, 200);
});

test('huge headers get 431 and the service stays up', async (t) => {
  const s = await start(t);
  const reply = await raw(s.a, `GET /latest/meta-data/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  assert.match(reply, /^HTTP\/1\.1 431 /);
  const many = Array.from({ length: 2000 }, (_, i) => `X-H${i}: v\r\n`).join('');
  assert.match(await raw(s.a, `GET /latest/meta-data/ HTTP/1.1\r\nHost: x\r\n${many}\r\n`), /^HTTP\/1\.1 431 /);
  assert.equal((await call(s.a, '/latest/meta-data/instance-id')).status, 200);
});

test('a few hundred random requests never get a 500 and the service keeps answering', async (t) => {
  const s = await start(t);
  let seed = 42;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const alphabet = 'abz09-_.:/%?#=&\\ \t~!$@[]{}"\'<>|^`\u00e9\u0000\u007f\r\n';
  const pieces = ['latest', 'meta-data', 'openstack', 'crowd', 'v1', 'pipe', 'read', '..', '.', '%2e', '%00', '2009-04-04', 'user-data', 'api', 'token', ''];
  const methods = ['GET', 'PUT', 'POST', 'DELETE', 'HEAD', 'G\u0000T', 'CONNECT', 'TRACE', 'XYZ'];
  const statuses = new Set<string>();
  for (let i = 0; i < 300; i++) {
    let path = '/';
    for (let j = rnd(6); j > 0; j--) path += `${pieces[rnd(pieces.length)]}/`;
    for (let j = rnd(4); j > 0; j--) path += alphabet[rnd(alphabet.length)];
    const headerName = ['X-aws-ec2-metadata-token', 'X-aws-ec2-metadata-token-ttl-seconds', 'X-Forwarded-For', 'Content-Length', 'X-Fuzz', 'Transfer-Encoding'][rnd(6)];
    const headerValue = Array.from({ length: rnd(40) }, () => alphabet[rnd(alphabet.length)]).join('');
    const reply = await raw(s.a, `${methods[rnd(methods.length)]} ${path} HTTP/1.1\r\nHost: 169.254.169.254\r\n${headerName}: ${headerValue}\r\nConnection: close\r\n\r\n`, 2000);
    const status = /^HTTP\/1\.1 (\d{3}) /.exec(reply)?.[1] ?? 'none';
    statuses.add(status);
    assert.ok(!status.startsWith('5'), `request ${i}: ${JSON.stringify(path)} got ${status}`);
    assert.ok(!reply.includes(secret));
  }
  assert.ok(statuses.has('400') && statuses.has('404'), [...statuses].join(','));
  assert.equal((await call(s.a, '/latest/meta-data/instance-id')).status, 200);
});

test('secret values appear only in secret.json, and neither secrets nor tokens reach the log', async (t) => {
  const s = await start(t);
  const token = (await call(s.a, '/latest/api/token', { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '60' } })).body;
  const seen: string[] = [];
  const crawl = async (path: string): Promise<void> => {
    const r = await call(s.a, path, { headers: { 'X-aws-ec2-metadata-token': token } });
    assert.equal(r.status, 200, path);
    seen.push(path);
    assert.ok(!r.body.includes(secret) && !r.body.includes('private-user-value'), path);
    if (!path.endsWith('/')) return;
    for (const line of r.body.split('\n')) {
      const index = /^(\d+)=/.exec(line)?.[1];
      await crawl(index !== undefined ? `${path}${index}/` : `${path}${line}`);
    }
  };
  await crawl('/latest/');
  for (const f of ['meta_data.json', 'network_data.json', 'user_data', 'vendor_data.json', 'vendor_data2.json']) {
    const r = await call(s.a, `/openstack/latest/${f}`);
    assert.equal(r.status, 200, f);
    assert.ok(!r.body.includes(secret) && !r.body.includes('private-user-value'), f);
  }
  assert.ok(seen.includes('/latest/meta-data/public-keys/0/openssh-key'));
  assert.ok(seen.includes('/latest/dynamic/instance-identity/document'));
  assert.ok((await call(s.a, '/crowd/v1/os/parameters/secret.json')).body.includes(secret));
  assert.ok(!(await call(s.a, '/crowd/v1/os/parameters/private.json')).body.includes(secret));
  await call(s.a, '/crowd/v1/pipe/write', { method: 'POST', body: `pipe ${secret}` });
  const log = s.lines.join('');
  assert.ok(log.includes('/crowd/v1/os/parameters/secret.json'), 'requests are logged');
  assert.ok(!log.includes(secret), 'no secret in the log');
  assert.ok(!log.includes(token), 'no token in the log');
});

test('a client that never finishes its headers is cut off with 408 and the service stays up', async (t) => {
  const s = await start(t, { requestTimeoutMs: 400 });
  const slow = await new Promise<string>((resolve) => {
    const socket = connect(s.a, '127.0.0.1');
    const chunks: Buffer[] = [];
    const deadline = setTimeout(() => socket.destroy(), 10_000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(deadline);
      resolve(Buffer.concat(chunks).toString());
    });
    socket.write('GET /latest/meta-data/ HTTP/1.1\r\nHost: x\r\nX-Slow: ');
  });
  assert.match(slow, /^HTTP\/1\.1 408 /);
  assert.equal((await call(s.a, '/latest/meta-data/instance-id')).status, 200);
});

test('the service listens on IPv6 and hands identify the IPv6 peer address', async (t) => {
  const seen: string[] = [];
  const guest = exampleGuest();
  const service = new MetadataService({
    identify: (c) => {
      seen.push(c.remoteAddress);
      return c.remoteAddress === '::1' ? guest : undefined;
    },
  });
  t.after(() => service.close());
  const [addr] = await service.listen([{ host: '::1', port: 0, interface: 'lo' }]);
  const body = await new Promise<string>((resolve, reject) => {
    request({ host: '::1', port: addr!.port, path: '/openstack/latest/meta_data.json', agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString()));
    })
      .on('error', reject)
      .end();
  });
  assert.equal(JSON.parse(body).hostname, 'web-1');
  assert.deepEqual(seen, ['::1']);
});

test('closing one listener leaves the others serving, and an address already listened on is refused', async (t) => {
  const guest = exampleGuest();
  const service = new MetadataService({ identify: () => guest });
  t.after(() => service.close());
  const [a, b] = await service.listen([
    { host: '127.0.0.1', port: 0 },
    { host: '::1', port: 0, interface: 'lo' },
  ]);
  await assert.rejects(service.listen([{ host: '::1', port: b!.port }]), /Cannot listen on \[::1\]:\d+: already listening there/);
  await service.unlisten({ host: '::1', port: b!.port });
  await assert.rejects(fetch(`http://[::1]:${b!.port}/latest/meta-data/instance-id`));
  const res = await fetch(`http://127.0.0.1:${a!.port}/latest/meta-data/instance-id`);
  assert.equal(await res.text(), guest.instanceId);
  await service.listen([{ host: '::1', port: b!.port }]);
  assert.equal(await (await fetch(`http://[::1]:${b!.port}/latest/meta-data/instance-id`)).text(), guest.instanceId, 'a closed address can be listened on again');
});
