// The orchestrator's first connection to NATS. An outage (nats-server restarting, or not up yet) is waited out with
// backoff, each failure logged, as the workers do: exiting instead made a supervisor restart it every ~1.6 s, and its
// crash-loop rule stopped a local run after ~16 s of NATS outage (review24e). Refused credentials end it at once, with
// exit code 1 as before (docs/roles.md, "Exit status": a restart may bring the right ones, or a rotated secret).
// A TLS failure (the server's certificate not signed by the CA given, expired, not naming the host; TLS asked of a
// server without it) is a SetupError, exit 78 (round 25): it was waited out as an outage, for ever, each attempt
// logged as if the server were down.
import { setTimeout as sleep } from 'node:timers/promises';
import type { NatsConnection } from 'nats';
import { SetupError } from '../lib/config/setup-error.ts';
import { backoffDelay, connectNats, isNatsAuthError, isNatsTlsError, type NatsConnectOptions } from '../lib/transport/index.ts';

/** Backoff between attempts: from 500 ms, doubling, at most 10 s (a worker's reconnect backoff's ceiling). */
const RETRY = { initialDelayMs: 500, maxDelayMs: 10_000 };

export async function connectNatsWaiting(opts: NatsConnectOptions, log: (line: string) => void): Promise<NatsConnection> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connectNats(opts);
    } catch (e) {
      const msg = (e as Error).message;
      if (isNatsTlsError(e)) {
        throw new SetupError(`${msg} (${(e as { code?: string }).code}): a TLS setup error, not an outage: check the CA the server's certificate is signed by and the host it names (--nats-tls-ca, the URL's host), and that the server has TLS on (docs/roles.md, "Exit status")`, { cause: e });
      }
      if (isNatsAuthError(e)) throw Object.assign(new Error(`${msg}: check the NATS credentials (--nats-user/--nats-pass-file or --nats-token-file)`, { cause: e }), { code: (e as { code?: string }).code });
      const ms = backoffDelay(attempt, RETRY);
      log(`${msg}; trying again in ${ms} ms (attempt ${attempt})`);
      await sleep(ms);
    }
  }
}
