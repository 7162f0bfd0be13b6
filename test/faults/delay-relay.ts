// A TCP relay that adds a one-way delay to every byte, each direction, in order: the network-fault suite's
// latency where the kernel has no `tc netem` (test/faults/netlab.ts). It runs inside a host's namespace, so the
// bytes still cross that host's real link (where nftables can drop packets). The delay is read from a file,
// polled every 100 ms (a number of milliseconds; absent or empty = 0), so a fault can be switched on and off
// while connections stay open.
//
//   node --import tsx test/faults/delay-relay.ts LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_FILE
import { createServer, connect, type Socket } from 'node:net';
import { readFileSync, watchFile } from 'node:fs';

function hostPort(s: string | undefined, what: string): { host: string; port: number } {
  const m = /^([\d.]+):(\d+)$/.exec(s ?? '');
  if (!m) throw new Error(`delay-relay: ${what} must be IPv4:PORT, got ${JSON.stringify(s)}`);
  return { host: m[1], port: Number(m[2]) };
}

const [listenArg, targetArg, delayFile] = process.argv.slice(2);
const listen = hostPort(listenArg, 'LISTEN');
const target = hostPort(targetArg, 'TARGET');
if (!delayFile) throw new Error('delay-relay: DELAY_FILE is required');

let delayMs = 0;
const readDelay = () => {
  const before = delayMs;
  try {
    const v = Number(readFileSync(delayFile, 'utf8').trim() || '0');
    delayMs = Number.isFinite(v) && v >= 0 ? v : 0;
  } catch {
    delayMs = 0;
  }
  // a test waits for this line (RelayProcess.delaySet) instead of guessing when the poll has seen its write
  if (delayMs !== before) console.log(`delay-relay: delay ${delayMs} ms`);
};
readDelay();
watchFile(delayFile, { interval: 100 }, readDelay);

/**
 * Copies `from` to `to`, each chunk `delayMs` late, never reordered: one queue per direction drained by one timer
 * (separate timers per chunk may fire out of order when their delays differ).
 */
function pipeDelayed(from: Socket, to: Socket): void {
  const queue: { chunk: Buffer; at: number }[] = [];
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  const drain = () => {
    timer = undefined;
    while (queue.length > 0 && queue[0]!.at <= Date.now()) {
      const { chunk } = queue.shift()!;
      if (!to.destroyed) to.write(chunk);
    }
    if (queue.length > 0) timer = setTimeout(drain, queue[0]!.at - Date.now());
    else if (ended) to.destroy();
  };
  from.on('data', (chunk: Buffer) => {
    // a shorter delay than the chunk before waits for it: `at` never decreases along the queue
    const at = Math.max(Date.now() + delayMs, queue.length > 0 ? queue[queue.length - 1]!.at : 0);
    queue.push({ chunk, at });
    if (timer === undefined) drain();
  });
  // An end or error on one side ends the other after the bytes still in flight.
  const close = () => {
    ended = true;
    if (timer === undefined) drain();
  };
  from.on('end', close);
  from.on('error', close);
  from.on('close', close);
}

createServer((client) => {
  const upstream = connect(target.port, target.host);
  pipeDelayed(client, upstream);
  pipeDelayed(upstream, client);
})
  .on('error', (e) => {
    console.error(`delay-relay: ${e.message}`);
    process.exit(1);
  })
  .listen(listen.port, listen.host, () => console.log(`delay-relay ${listenArg} -> ${targetArg} (delay from ${delayFile}) ready`));
