import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopback, parseListenAddress, serverUrl } from './listen-address.ts';

test('listen addresses parse in IPv4, bracketed IPv6, name and port-only forms', () => {
  assert.deepEqual(parseListenAddress('127.0.0.1:7470'), { host: '127.0.0.1', port: 7470 });
  assert.deepEqual(parseListenAddress('[::1]:8443'), { host: '::1', port: 8443 });
  assert.deepEqual(parseListenAddress('localhost:0'), { host: 'localhost', port: 0 });
  assert.deepEqual(parseListenAddress(':7470'), { host: '0.0.0.0', port: 7470 });
});

test('malformed listen addresses are refused with the expected form', () => {
  for (const bad of ['127.0.0.1', '::1:7470', '[nope]:1', '1.2.3.4:70000', 'a:b']) {
    assert.throws(() => parseListenAddress(bad), /expected HOST:PORT|not an IPv6 address/, bad);
  }
});

test('only loopback addresses count as loopback', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost', '::ffff:127.0.0.1']) assert.ok(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '128.0.0.1']) assert.ok(!isLoopback(h), h);
});

test('the URL brackets IPv6 hosts and picks the scheme from TLS', () => {
  assert.equal(serverUrl({ host: '::1', port: 1 }, false), 'http://[::1]:1');
  assert.equal(serverUrl({ host: '10.0.0.1', port: 8443 }, true), 'https://10.0.0.1:8443');
  assert.equal(serverUrl({ host: '0.0.0.0', port: 8443 }, true), 'https://localhost:8443');
});
