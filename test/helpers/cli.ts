// The project's command line as the tests run it: `node bin/recovery-grpo.mjs ARGS...` in a child process.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
export const BIN = fileURLToPath(new URL('../../bin/recovery-grpo.mjs', import.meta.url));

/** Runs the CLI; resolves with stdout and stderr, rejects (with them on the error) on a non-zero exit. */
export const cli = (...args: string[]) => run(process.execPath, [BIN, ...args], { maxBuffer: 1 << 24 });
