// Test certificates made with openssl: a CA, a server certificate for 127.0.0.1/localhost, and client
// certificates with the subject alternative names a test asks for (e.g. a role URI,
// lib/transport/cert-identity.ts). `opensslAvailable()` lets a test skip, saying so, where openssl is missing.
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function opensslAvailable(): boolean {
  const r = spawnSync('openssl', ['version']);
  return !r.error && r.status === 0;
}

export interface TestCerts {
  ca: string;
  server: { cert: string; key: string };
  /** One entry per requested client: its certificate and key files. */
  clients: Record<string, { cert: string; key: string }>;
}

/**
 * Writes ca.crt, server.crt/key and <name>.crt/key for each client into `dir`. `clients` maps a file name to
 * the client's subject alternative names (openssl syntax, e.g. "URI:spiffe://recovery-grpo/role/learner"), or ''
 * for none.
 */
export function makeTestCerts(dir: string, clients: Record<string, string>, o: { serverNames?: string } = {}): TestCerts {
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=recovery-grpo-test-ca', '-days', '1');
  const sign = (name: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    ossl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    ossl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`);
    return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  };
  // nats.js checks the name "localhost" when dialling 127.0.0.1 over TLS: both names are in the certificate
  // (o.serverNames: other names, for a test of a certificate that does not name the host dialled)
  const server = sign('server', `subjectAltName=${o.serverNames ?? 'IP:127.0.0.1,DNS:localhost'}\nextendedKeyUsage=serverAuth\n`);
  const out: TestCerts['clients'] = {};
  for (const [name, san] of Object.entries(clients)) out[name] = sign(name, `${san ? `subjectAltName=${san}\n` : ''}extendedKeyUsage=clientAuth\n`);
  return { ca: join(dir, 'ca.crt'), server, clients: out };
}

/**
 * A client certificate signed by an existing CA (`ca`: its certificate and key files), written to `dir`/<name>.crt and
 * .key: a fresh P-256 key, subject CN=`commonName`, and `ext` (openssl extension lines, e.g. "subjectAltName=URI:...").
 * What an issuer such as cert-manager's CA Issuer signs for a CSR (the test says which extensions).
 */
export function signClientCert(dir: string, ca: { cert: string; key: string }, name: string, commonName: string, ext: string): { cert: string; key: string } {
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  writeFileSync(join(dir, `${name}.ext`), ext);
  ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${commonName}`);
  ossl('x509', '-req', '-in', `${name}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-CAserial', join(dir, `${name}.srl`), '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`);
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/**
 * A certificate for an existing key (`key`), signed by `ca` with a chosen validity window (openssl ca: x509 -req
 * cannot set dates), as an expired or not-yet-valid file would arrive. Dates in openssl's YYYYMMDDHHMMSSZ form.
 */
export function datedCert(dir: string, ca: { cert: string; key: string }, key: string, name: string, start: string, end: string): string {
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  writeFileSync(join(dir, `${name}.cnf`), `[ca]\ndefault_ca=d\n[d]\ndatabase=${name}.index\nnew_certs_dir=.\nserial=${name}.serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\n[p]\nCN=supplied\n`);
  writeFileSync(join(dir, `${name}.index`), '');
  writeFileSync(join(dir, `${name}.serial`), '01\n');
  ossl('req', '-new', '-key', key, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  ossl('ca', '-batch', '-config', `${name}.cnf`, '-cert', ca.cert, '-keyfile', ca.key, '-in', `${name}.csr`, '-out', `${name}.crt`, '-startdate', start, '-enddate', end, '-notext');
  return join(dir, `${name}.crt`);
}
