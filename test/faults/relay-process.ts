// The delay relay (delay-relay.ts) as a child process on loopback, for tests without namespaces: it listens on a
// free port, forwards to `target`, and takes its delay from `delayFile` (write a number of ms; the relay polls the
// file every 100 ms). A delay longer than the test makes the relay a black hole that keeps the connection open:
// bytes are accepted (TCP acknowledges them) and never arrive.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/nats.ts';

const RELAY = fileURLToPath(new URL('./delay-relay.ts', import.meta.url));

export interface RelayProcess {
  /** Loopback port the relay listens on. */
  readonly port: number;
  /**
   * Resolves once the relay applies a delay of `ms` (its line `delay-relay: delay MS ms`), seen after this call: call it
   * right after writing the delay file, instead of sleeping past the relay's 100 ms poll (a loaded machine can miss it).
   */
  delaySet(ms: number, timeoutMs?: number): Promise<void>;
  stop(): void;
}

export async function startDelayRelay(targetPort: number, delayFile: string): Promise<RelayProcess> {
  const port = await freePort();
  const relay = spawn(process.execPath, ['--import', 'tsx', RELAY, `127.0.0.1:${port}`, `127.0.0.1:${targetPort}`, delayFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const listeners = new Set<() => void>();
  relay.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const l of [...listeners]) l();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const ready = () => out.includes('ready') && (listeners.delete(ready), resolve());
      listeners.add(ready);
      relay.once('exit', (code) => reject(new Error(`delay relay exited ${code} before it was ready`)));
    });
  } catch (e) {
    relay.kill('SIGKILL');
    throw e;
  }
  const delaySet = (ms: number, timeoutMs = 30_000) => {
    const from = out.length;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(seen);
        reject(new Error(`the delay relay did not apply a ${ms} ms delay within ${timeoutMs / 1000} s; its output:\n${out}`));
      }, timeoutMs);
      const seen = () => {
        if (!out.slice(from).split('\n').includes(`delay-relay: delay ${ms} ms`)) return;
        clearTimeout(timer);
        listeners.delete(seen);
        resolve();
      };
      listeners.add(seen);
    });
  };
  return { port, delaySet, stop: () => relay.kill('SIGKILL') };
}
