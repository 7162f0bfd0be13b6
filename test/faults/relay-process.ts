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
  stop(): void;
}

export async function startDelayRelay(targetPort: number, delayFile: string): Promise<RelayProcess> {
  const port = await freePort();
  const relay = spawn(process.execPath, ['--import', 'tsx', RELAY, `127.0.0.1:${port}`, `127.0.0.1:${targetPort}`, delayFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await new Promise<void>((resolve, reject) => {
      relay.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      relay.once('exit', (code) => reject(new Error(`delay relay exited ${code} before it was ready`)));
    });
  } catch (e) {
    relay.kill('SIGKILL');
    throw e;
  }
  return { port, stop: () => relay.kill('SIGKILL') };
}
