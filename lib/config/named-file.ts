// Files an operator names (credentials, TLS files, signing keys) are read through one function, so every role says
// the same thing about a file it cannot read. A leaf module: lib/transport and lib/checkpoint both use it.
import { readFileSync } from 'node:fs';

/**
 * A file's bytes; a file that cannot be read is an Error `<what> <file>: cannot read it (<code>)`, naming the option
 * or field it came from.
 */
export function readNamedFile(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new Error(`${what} ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * TLS and signing-key options take a file's path or the PEM text itself (as Node's and nats.js's do). Text is a value
 * holding a PEM marker or a line break anywhere (`openssl pkcs12 -nodes` output opens with "Bag Attributes" lines, which
 * Node's TLS accepts): such a value may be a private key, so it is never read as a path nor printed in a message.
 */
export const isPemText = (value: string): boolean => value.includes('-----BEGIN') || /[\r\n]/.test(value);

/** The bytes of a TLS option given as a path, PEM text or a Buffer (read as readNamedFile does). */
export function readPathOrPem(value: string | Buffer, what: string): Buffer {
  if (Buffer.isBuffer(value)) return value;
  return isPemText(value) ? Buffer.from(value) : readNamedFile(value, what);
}

/** How errors name such an option: `<what> <path>`, or `<what> (PEM text)` for text and Buffers. */
export const namePathOrPem = (value: string | Buffer, what: string): string =>
  typeof value === 'string' && !isPemText(value) ? `${what} ${value}` : `${what} (PEM text)`;
