// A TLS or signing-key option given as PEM text is read as text wherever it starts, and never printed (review34: text
// opening with openssl's "Bag Attributes" lines was taken for a file name, and the ENOENT message printed the key).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { isPemText, namePathOrPem, readPathOrPem } from '../../lib/config/named-file.ts';
import { loadCaBundle, loadTlsSet } from '../../lib/transport/tls-reload.ts';
import { loadSigningKey } from '../../lib/checkpoint/sign.ts';
import { checkRoleFlags } from '../../cli/flag-checks.ts';
import { resolveNatsAuth } from '../../lib/transport/nats-auth.ts';

// what `openssl pkcs12 -nodes` writes: attribute lines before each block
const withBagAttributes = (pem: string) => `Bag Attributes\n    localKeyID: 01 00 00 00\nKey Attributes: <No Attributes>\n${pem}`;
const ed25519 = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const keyBody = ed25519.split('\n')[1]!;

test('PEM text is text wherever its marker stands; a path is a path', () => {
  assert.equal(isPemText('/etc/tls/tls.key'), false);
  assert.equal(isPemText('-----BEGIN CERTIFICATE-----'), true);
  assert.equal(isPemText(withBagAttributes(ed25519)), true);
  assert.equal(isPemText('a secret\npasted in'), true, 'a line break: not a file name');
  const text = withBagAttributes(ed25519);
  assert.deepEqual(readPathOrPem(text, 'tls.key'), Buffer.from(text));
  assert.equal(namePathOrPem(text, 'tls.key'), 'tls.key (PEM text)');
  assert.equal(namePathOrPem('/etc/tls/tls.key', 'tls.key'), 'tls.key /etc/tls/tls.key');
});

test('errors about PEM text name the field, never the text', () => {
  const garbage = withBagAttributes(`-----BEGIN CERTIFICATE-----\n${keyBody}\n-----END CERTIFICATE-----\n`);
  for (const f of [() => loadTlsSet({ cert: garbage, key: withBagAttributes(ed25519) }, 'tls'), () => loadCaBundle(garbage, 'tls.ca')]) {
    assert.throws(f, (e: Error) => {
      assert.match(e.message, /\(PEM text\)/);
      assert.ok(!e.message.includes(keyBody), e.message);
      return true;
    });
  }
  // the signing key as text with attribute lines: read as text (it was a file name before, ENOENT with the key in it)
  assert.equal(loadSigningKey(withBagAttributes(ed25519)).asymmetricKeyType, 'ed25519');
  // a role flag: TLS flags take the text; a file flag refuses it without printing it
  assert.equal(checkRoleFlags({ tlsKey: withBagAttributes(ed25519) }, {}), true);
  // the NATS TLS flags are paths (nats.js reads them): text there is refused at the flag and by resolveNatsAuth, unprinted
  assert.throws(() => checkRoleFlags({ natsTlsKey: withBagAttributes(ed25519) }, {}), (e: Error) => !e.message.includes(keyBody) && /^--nats-tls-key: expects a file name/.test(e.message));
  const readableFile = fileURLToPath(import.meta.url); // any readable file stands for the certificate
  assert.throws(() => resolveNatsAuth({ tls: { cert: readableFile, key: ed25519 } }, {}), (e: Error) => !e.message.includes(keyBody) && /^NATS TLS key: expects a file name/.test(e.message));
  assert.throws(() => resolveNatsAuth({ tls: { cert: ed25519, key: readableFile } }, {}), (e: Error) => !e.message.includes(keyBody) && /^NATS TLS certificate: expects a file name/.test(e.message));
  assert.throws(() => checkRoleFlags({ authTokenFile: `not-a-file\n${keyBody}` }, {}), (e: Error) => {
    assert.match(e.message, /^--auth-token-file: expects a file name, got text \(it holds a PEM marker or a line break; not printed\)$/);
    assert.ok(!e.message.includes(keyBody));
    return true;
  });
});
