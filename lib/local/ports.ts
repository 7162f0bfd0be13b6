// The local run's ports on 127.0.0.1. freePort() releases its probe, so two calls can return the same port: the
// ports of one run are handed out distinct. A role keeps its metrics port across restarts (so a scraper finds it
// again), unless another process took the port while the role was down; then the role gets a new one, said in
// the log, where it would otherwise fail to bind and restart forever.
import { createServer } from 'node:net';

/** A port nothing listens on now (127.0.0.1). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolvePort(port));
    });
  });
}

/** Whether a server could listen on 127.0.0.1:`port` now. */
export async function canListen(port: number): Promise<boolean> {
  return new Promise((answer) => {
    const s = createServer();
    s.once('error', () => answer(false));
    s.listen(port, '127.0.0.1', () => s.close(() => answer(true)));
  });
}

export class RunPorts {
  private readonly taken = new Set<number>();

  constructor(private readonly log: (line: string) => void = () => undefined) {}

  /** A free port no earlier call of this run returned. */
  async distinct(): Promise<number> {
    for (;;) {
      const p = await freePort();
      if (!this.taken.has(p)) {
        this.taken.add(p);
        return p;
      }
    }
  }

  /** `port` again if it is still free, else a new distinct one; `what` names the port in the log line. */
  async keep(what: string, port: number): Promise<number> {
    if (await canListen(port)) return port;
    const next = await this.distinct();
    this.log(`[local] ${what} ${port} is taken by another process; moved to ${next}`);
    return next;
  }
}
