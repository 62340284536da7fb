import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A private slapd for tests: its own config, database, TLS certificate and ports, gone after the test. */
export interface Slapd {
  /** `ldap://127.0.0.1:PORT` (StartTLS offered). */
  url: string;
  /** `ldaps://127.0.0.1:PORT`. */
  ldapsUrl: string;
  /** PEM of the CA that signed the server's certificate. */
  caPem: string;
  suffix: string;
  /** Loads LDIF as the root DN. */
  add(ldif: string): void;
}

export const slapdSuffix = 'dc=crowd,dc=test';

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  s.close();
  await once(s, 'close');
  return port;
}

function makeCertificates(dir: string): void {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=crowd-test-ca', '-days', '1']);
  run(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'san.ext']);
}

/**
 * Starts slapd (mdb backend, memberof overlay) on two loopback ports and waits
 * for "slapd starting". `cn=svc,<suffix>` (password "svcpw") may read the tree;
 * anyone may bind. Stopped by pid and its directory removed after the test.
 */
export async function startSlapd(t: { after: (fn: () => Promise<void> | void) => void }): Promise<Slapd> {
  const dir = mkdtempSync(join(tmpdir(), 'crowd-slapd-'));
  mkdirSync(join(dir, 'db'));
  makeCertificates(dir);
  writeFileSync(
    join(dir, 'slapd.conf'),
    [
      'include /etc/ldap/schema/core.schema',
      'include /etc/ldap/schema/cosine.schema',
      'include /etc/ldap/schema/inetorgperson.schema',
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      'moduleload memberof',
      `pidfile ${dir}/slapd.pid`,
      `TLSCACertificateFile ${dir}/ca.crt`,
      `TLSCertificateFile ${dir}/server.crt`,
      `TLSCertificateKeyFile ${dir}/server.key`,
      'database mdb',
      `suffix "${slapdSuffix}"`,
      `rootdn "cn=admin,${slapdSuffix}"`,
      'rootpw adminpw',
      `directory ${dir}/db`,
      'overlay memberof',
      'access to attrs=userPassword by anonymous auth by * none',
      `access to * by dn.exact="cn=svc,${slapdSuffix}" read by * none`,
      '',
    ].join('\n'),
  );
  const [port, tlsPort] = [await freePort(), await freePort()];
  const url = `ldap://127.0.0.1:${port}`;
  const child = spawn('slapd', ['-f', join(dir, 'slapd.conf'), '-h', `${url}/ ldaps://127.0.0.1:${tlsPort}/`, '-d', '256'], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`slapd did not start within 10 s: ${log}`)), 10_000);
    child.stderr.on('data', (b: Buffer) => {
      log += b.toString();
      if (log.includes('slapd starting')) {
        clearTimeout(deadline);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(deadline);
      reject(new Error(`slapd exited with ${code}: ${log}`));
    });
  });
  const add = (ldif: string) =>
    execFileSync('ldapadd', ['-x', '-H', url, '-D', `cn=admin,${slapdSuffix}`, '-w', 'adminpw'], { input: ldif, stdio: ['pipe', 'ignore', 'pipe'] });
  add(`dn: ${slapdSuffix}\nobjectClass: dcObject\nobjectClass: organization\no: crowd\ndc: crowd\n\ndn: cn=svc,${slapdSuffix}\nobjectClass: person\ncn: svc\nsn: svc\nuserPassword: svcpw\n`);
  return { url, ldapsUrl: `ldaps://127.0.0.1:${tlsPort}`, caPem: readFileSync(join(dir, 'ca.crt'), 'utf8'), suffix: slapdSuffix, add };
}
