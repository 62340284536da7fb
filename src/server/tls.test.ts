import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecRunner, FakeRunner } from '../base/runner.ts';
import { missingTools } from '../base/require-tool.ts';
import { certFingerprint, ensureSelfSignedCert, selfSignedCommand } from './tls.ts';

test('the self-signed certificate command names every host as DNS or IP', () => {
  assert.deepEqual(selfSignedCommand({ certPath: '/d/c', keyPath: '/d/k', hosts: ['10.0.0.5', 'crowd.example', 'fd00::1'] }), [
    'openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-days', '3650', '-subj', '/CN=crowdcloud',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1,IP:10.0.0.5,DNS:crowd.example,IP:fd00::1',
    '-keyout', '/d/k', '-out', '/d/c',
  ]);
});

test('a self-signed certificate is made once, its key private, and its fingerprint matches openssl', { skip: missingTools('openssl') }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-tls-'));
  try {
    const first = await ensureSelfSignedCert(new ExecRunner(), dir, ['10.1.2.3']);
    assert.equal(first.created, true);
    assert.equal(statSync(join(dir, 'tls', 'server.key')).mode & 0o777, 0o600);
    const fake = new FakeRunner();
    const second = await ensureSelfSignedCert(fake, dir, ['10.1.2.3']);
    assert.equal(second.created, false);
    assert.equal(second.cert, first.cert);
    assert.deepEqual(fake.lines(), []);

    const out = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', join(dir, 'tls', 'server.crt')], { encoding: 'utf8' });
    const hex = out.split('=')[1]!.trim().replace(/:/g, '').toLowerCase();
    assert.equal(certFingerprint(first.cert), `sha256:${hex}`);
    assert.match(certFingerprint(first.cert), /^sha256:[0-9a-f]{64}$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
