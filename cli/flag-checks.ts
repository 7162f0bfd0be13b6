// Checks of command-line flags, shared by the commands, each error naming the flag.
//
// The role flags that name a port or a file, checked when the command line is parsed, the same way for every role
// (orchestrator, learner, rollout-worker, reward-worker): a bad one is refused naming the flag, with
// CONFIG_EXIT_CODE (cli/main.ts's .fail), before the role binds a port, dials NATS or creates its run state. Left
// to the role, a missing TLS file surfaced after the run state was created (exit 1, restarted for ever), and a
// negative port as Node's error.
import { isPemText, readNamedFile } from '../lib/config/named-file.ts';
import { imageFormatOf } from '../lib/data/image-format.ts';
import { isLoopbackHost } from '../lib/transport/grpc-common.ts';
import { readMetricsToken } from '../lib/metrics/index.ts';

/** Flags holding a TCP port (0: any free port). */
const PORT_FLAGS = ['metricsPort'] as const;

/** Flags naming a file the role reads at start (secrets, PEM material). The gRPC TLS flags may hold inline PEM instead. */
const READ_FLAGS = [
  'authTokenFile', 'roleTokensFile', 'metricsTokenFile', 'tlsCert', 'tlsKey', 'tlsCa',
  'natsPassFile', 'natsTokenFile', 'natsTlsCa', 'natsTlsCert', 'natsTlsKey',
] as const;

/** Flags holding a count of at least 1. */
const COUNT_FLAGS = ['maxBatch', 'maxInFlight'] as const;

const flagName = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Throws an Error naming the first role flag of `a` (yargs' camel-case keys) that is not a port, count or readable file. */
export function checkRoleFlags(a: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): true {
  for (const key of PORT_FLAGS) {
    const v = a[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535)) {
      throw new Error(`${flagName(key)} must be a port, an integer from 0 to 65535 (0: any free port), got ${String(v)}`);
    }
  }
  for (const key of COUNT_FLAGS) checkIntegerFlag(a[key], flagName(key), 1);
  for (const key of READ_FLAGS) {
    const v = a[key];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v.trim() === '') throw new Error(`${flagName(key)}: the file name is empty`);
    if (isPemText(v)) {
      if (key.startsWith('tls')) continue; // inline PEM, read as such (readPathOrPem); the NATS ones are paths (nats.js)
      // text where a file name belongs, e.g. a secret pasted in: refused without printing it
      throw new Error(`${flagName(key)}: expects a file name, got text (it holds a PEM marker or a line break; not printed)`);
    }
    checkReadable(v, flagName(key));
  }
  // the token (its file, or $RECOVERY_GRPO_METRICS_TOKEN) read as the role will: empty or short is refused here
  const token = readMetricsToken(undefined, typeof a.metricsTokenFile === 'string' ? a.metricsTokenFile : undefined, '--metrics-token-file', env);
  checkMetricsHost(a.metricsHost, a.metricsNetworkProtected === true, token !== undefined);
  return true;
}

/** The opt-in flag of a non-loopback --metrics-host without a token (every role defines both). */
export const METRICS_OPT_IN_FLAG = '--metrics-network-protected';
/** The metrics port's token (every role): with it, /metrics and the orchestrator's /api/* answer only a request bearing it. */
export const METRICS_TOKEN_FLAG = '--metrics-token-file';

/**
 * Whoever reaches the metrics port reads /metrics (and the orchestrator's /api/history and /api/eval-grid.png) unless
 * the port takes a token. As checkListenAuth does for gRPC, a non-loopback host is refused unless the port takes one
 * (`hasToken`: METRICS_TOKEN_FLAG or $RECOVERY_GRPO_METRICS_TOKEN) or METRICS_OPT_IN_FLAG says the network restricts
 * who reaches it (a NetworkPolicy, as k8s/base/networkpolicies.yaml; docs/security.md, "Metrics and health endpoints").
 */
export function checkMetricsHost(host: unknown, networkProtected: boolean, hasToken = false): void {
  if (host === undefined || networkProtected || hasToken) return;
  if (typeof host !== 'string' || host.trim() === '') throw new Error('--metrics-host: the address is empty');
  if (!isLoopbackHost(host)) {
    throw new Error(`--metrics-host ${host} is not a loopback address, and without a token anyone who can reach the port reads /metrics (and the orchestrator's /api/*). Pass ${METRICS_TOKEN_FLAG} FILE (a bearer token Prometheus presents), or ${METRICS_OPT_IN_FLAG} if the network restricts who can reach the port (a NetworkPolicy, as k8s/base/networkpolicies.yaml), or keep --metrics-host 127.0.0.1`);
  }
}

const checkReadable = (file: string, flag: string): void => void readNamedFile(file, flag);

/** A whole-number flag of at least `min` (undefined: not given). yargs gives NaN for `--flag abc`. */
export function checkIntegerFlag(value: unknown, flag: string, min: number, note = ''): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) throw new Error(`${flag} must be an integer >= ${min}${note}, got ${String(value)}`);
}

/** An image output flag whose extension names a format writeImage writes (lib/data/image-format.ts). */
export function checkImageExtension(path: string, flag: string): void {
  try {
    imageFormatOf(path);
  } catch (e) {
    throw new Error(`${flag} ${(e as Error).message}`);
  }
}
