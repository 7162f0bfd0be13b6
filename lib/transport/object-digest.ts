// An object's SHA-256 as its info record holds it (`digest`): "SHA-256=" and the 32 bytes, which nats.js writes in
// base64url with padding (objectstore.js: Base64UrlPaddedCodec; ObjectChunks.commit writes the same). nats.js 2.29
// reads it in more forms (sha_digest.parser.js: hex in one case, base64url or standard base64, padded or not) since
// not every writer used one form, so a record another client wrote (e.g. an operator's `nats object put`) is checked
// by the bytes it names, not by its spelling: a digest of other bytes never matches whatever its form.

const PREFIX = 'SHA-256=';

/** The info record's digest of `sha256` (the raw 32 bytes), in the form nats.js writes. */
export function objectDigest(sha256: Uint8Array): string {
  return `${PREFIX}${Buffer.from(sha256).toString('base64url')}=`;
}

/** The 32 bytes `recorded` names, or null when it is no SHA-256 digest in a form nats.js reads. */
export function parseObjectDigest(recorded: unknown): Buffer | null {
  if (typeof recorded !== 'string' || !recorded.startsWith(PREFIX)) return null;
  const s = recorded.slice(PREFIX.length);
  let bytes: Buffer;
  if (/^([0-9a-f]{64}|[0-9A-F]{64})$/.test(s)) bytes = Buffer.from(s, 'hex');
  else if (/^[A-Za-z0-9_-]{43}={0,1}$/.test(s) || /^[A-Za-z0-9+/]{43}={0,1}$/.test(s)) bytes = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  else return null;
  return bytes.length === 32 ? bytes : null;
}

/** Whether `recorded` (an info record's digest) names exactly `sha256`. */
export function objectDigestMatches(recorded: unknown, sha256: Uint8Array): boolean {
  const named = parseObjectDigest(recorded);
  return named !== null && named.equals(Buffer.from(sha256));
}
