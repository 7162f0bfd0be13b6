// Waiting for a promise at most so long: shutdown paths (a role's drain, a NATS drain, graph threads, a periodic
// evaluation) must not hang on work that may never settle.

/**
 * `p`'s value, or 'timeout' when it has not settled within `ms` (`p` is left to run; its rejection passes through).
 * The timer never keeps the process alive, and is cleared once `p` settles.
 */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<'timeout'>((resolve) => {
      t = setTimeout(() => resolve('timeout'), ms);
      t.unref();
    }),
  ]);
}
