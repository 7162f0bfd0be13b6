// Waiting in tests for something another process or a server's loop does.

/**
 * Polls `probe` every 20 ms until it gives a value (neither undefined nor false) and returns it; after `timeoutMs`
 * throws naming `what`, followed by the last 15 lines of `log` when one is given (what the server said meanwhile).
 */
export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  log?: readonly string[],
  timeoutMs = 20_000,
): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}${log ? `\n${log.slice(-15).join('\n')}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
