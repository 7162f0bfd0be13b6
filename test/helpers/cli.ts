// The project's command line as the tests run it: `node bin/recovery-grpo.mjs ARGS...` in a child process.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
export const BIN = fileURLToPath(new URL('../../bin/recovery-grpo.mjs', import.meta.url));

/** Runs the CLI; resolves with stdout and stderr, rejects (with them on the error) on a non-zero exit. */
export const cli = (...args: string[]) => run(process.execPath, [BIN, ...args], { maxBuffer: 1 << 24 });

/** Runs the jobs, at most `width` at a time; resolves with their results in the jobs' order. */
export async function inParallel<T>(jobs: ReadonlyArray<() => Promise<T>>, width: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const lane = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(width, jobs.length)) }, lane));
  return results;
}
