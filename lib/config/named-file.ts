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
