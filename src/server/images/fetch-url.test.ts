import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { defaultAllowAddress, displayUrl, fetchUrl } from './fetch-url.ts';

test('link-local and unspecified addresses are refused by default, others allowed', () => {
  for (const a of ['169.254.169.254', 'fe80::1', '0.0.0.0', '::']) assert.equal(defaultAllowAddress(a), false, a);
  for (const a of ['127.0.0.1', '10.1.2.3', '2001:db8::1']) assert.equal(defaultAllowAddress(a), true, a);
});

test('a URL is shown without credentials or query', () => {
  assert.equal(displayUrl(new URL('https://user:pw@example.org:8443/a/b.img?token=s3cret')), 'https://example.org:8443/a/b.img');
});

describe('fetchUrl against a loopback server', () => {
  let server: Server;
  let port: number;
  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/big') return res.writeHead(200, { 'content-length': '5000' }).end('x'.repeat(5000));
      if (req.url === '/away') return res.writeHead(301, { location: `http://localhost:${port}/small` }).end();
      res.writeHead(200).end('small');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  test('a declared length above the cap is refused before the body is read', async () => {
    await assert.rejects(fetchUrl(`http://127.0.0.1:${port}/big`, { maxRedirects: 0, maxBytes: 100 }), { code: 'too_large' });
  });

  test('a host name resolving to a refused address is not contacted', async () => {
    const opts = { maxRedirects: 1, maxBytes: 100, allowAddress: (a: string) => a !== '127.0.0.1' && a !== '::1' };
    await assert.rejects(fetchUrl(`http://localhost:${port}/small`, opts), { code: 'forbidden' });
    await assert.rejects(fetchUrl(`http://127.0.0.1:${port}/away`, { ...opts, allowAddress: () => true, maxRedirects: 0 }), /more than 0 redirects/);
  });

  test('the body of a 2xx answer is returned as a stream', async () => {
    const { body } = await fetchUrl(`http://127.0.0.1:${port}/away`, { maxRedirects: 1, maxBytes: 100 });
    let text = '';
    for await (const c of body) text += String(c);
    assert.equal(text, 'small');
  });
});
