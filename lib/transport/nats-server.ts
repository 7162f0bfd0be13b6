// Starting a local nats-server (JetStream on) as a child process: used by the `demo` command
// (ensureNatsServer) and by tests (test/helpers/nats.ts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isLoopbackHost } from './grpc-common.ts';

export const ENSURE_SCRIPT = fileURLToPath(new URL('../../scripts/ensure-nats-server.sh', import.meta.url));

export interface NatsServerProcess {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly storeDir: string;
  /** Last lines the server logged (for error messages). */
  logTail(): string;
  /** SIGTERM, then SIGKILL after killAfterMs (default 3 s); resolves when the process is gone. Idempotent. */
  stop(opts?: { killAfterMs?: number }): Promise<void>;
  /** Resolves when the process exits (for any reason) with its exit code or signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnNatsOptions {
  host?: string;
  port: number;
  /** JetStream storage directory (created if missing). */
  storeDir: string;
  /** Binary to run. Default natsServerBinary(): $RECOVERY_GRPO_NATS_SERVER, else 'nats-server' from PATH. */
  binary?: string;
  /** How long to wait for "Server is ready". Default 15 s. */
  readyTimeoutMs?: number;
  /**
   * The server's max_payload in bytes (nats-server's default is 1 MiB): written to a config file in storeDir.
   * Checkpoints travel in chunks of this size (CHECKPOINT_MAX_PAYLOAD); not with a `-c` of extraArgs.
   */
  maxPayload?: number;
  extraArgs?: string[];
  /** Environment variables for the server, added to this process's (e.g. Go runtime settings). */
  env?: Record<string, string>;
}

/**
 * max_payload for the servers this project configures (k8s/base/nats.conf, the local run's and the demo's): 8 MiB,
 * the largest nats-server accepts without a warning. A checkpoint up to that size travels in one message, which a
 * follower holds and decodes without assembling it (docs/performance-history/broadcast.md, round 7).
 */
export const CHECKPOINT_MAX_PAYLOAD = 8 * 1024 * 1024;

/**
 * nats-server's PINGs to its clients, for the servers this project configures (k8s/base/nats.conf, the local run's,
 * the demo's and the tests', the faults suite's): every 10 s, a client that leaves 2 unanswered is dropped, so a client
 * gone without a word (a cut link, a frozen host) is let go within 20-30 s instead of 4-6 min (nats-server's defaults:
 * 2 min, 2). What it held goes with it: its subscriptions (a push consumer delivering to it, checkpoint pushes that
 * the server would otherwise keep writing into a dead socket until its write deadline) and its connection count.
 * The clients PING too (NatsConnectOptions.pingIntervalMs, 5 s): each side notices a silent peer on its own.
 */
export const SERVER_PING_CONF = 'ping_interval: "10s"\nping_max: 2';

/**
 * The nats-server binary started when none is given: $RECOVERY_GRPO_NATS_SERVER (e.g. .tmp/nats-2.10/nats-server,
 * the version the image and k8s/base run; scripts/fetch-nats-server-2.10.sh), else `nats-server` from PATH.
 */
export function natsServerBinary(): string {
  return process.env['RECOVERY_GRPO_NATS_SERVER'] || 'nats-server';
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * A server this process spawned lives no longer than this process: the exit hook below kills it on a normal exit,
 * but a process ended by a signal (a test runner's timeout, SIGKILL) runs no hook, and its nats-server stayed behind
 * holding its port and store (rounds 32's helpers each left one). On Linux, util-linux's `setpriv --pdeathsig KILL`
 * execs the server with the kernel's parent-death signal set, so it is killed with its parent whatever ends it; the pid
 * stays the server's. Elsewhere (no setpriv) only the exit hook holds.
 */
let pdeathsig: string[] | undefined;
function dieWithParent(): string[] {
  if (pdeathsig) return pdeathsig;
  const r = process.platform === 'linux' ? spawnSync('setpriv', ['--pdeathsig', 'KILL', 'true'], { stdio: 'ignore' }) : undefined;
  pdeathsig = r && !r.error && r.status === 0 ? ['setpriv', '--pdeathsig', 'KILL'] : [];
  return pdeathsig;
}
function killLeftoversOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

/** Spawns nats-server -js and resolves once it logs that it is ready (JetStream included). */
export async function spawnNatsServer(opts: SpawnNatsOptions): Promise<NatsServerProcess> {
  const host = opts.host ?? '127.0.0.1';
  mkdirSync(opts.storeDir, { recursive: true });
  const args = ['-js', '-a', host, '-p', String(opts.port), '-sd', opts.storeDir, ...(opts.extraArgs ?? [])];
  // nats-server's own configuration: max_payload and the PINGs to clients (SERVER_PING_CONF); with a -c of extraArgs,
  // that file's
  const own = !args.includes('-c');
  if (opts.maxPayload !== undefined) {
    if (!Number.isSafeInteger(opts.maxPayload) || opts.maxPayload < 1024) throw new Error(`spawnNatsServer: maxPayload must be an integer >= 1024 bytes, got ${opts.maxPayload}`);
    if (!own) throw new Error('spawnNatsServer: maxPayload and a -c config file in extraArgs: put max_payload in that file');
  }
  if (own) {
    const conf = join(opts.storeDir, 'server.conf');
    writeFileSync(conf, `${opts.maxPayload !== undefined ? `max_payload: ${opts.maxPayload}\n` : ''}${SERVER_PING_CONF}\n`);
    args.push('-c', conf);
  }
  const [launcher, ...launcherArgs] = [...dieWithParent(), opts.binary ?? natsServerBinary(), ...args];
  const child = spawn(launcher!, launcherArgs, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  live.add(child);
  killLeftoversOnExit();
  const lines: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const ready = new Promise<void>((resolve) => {
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        if (lines.length > 50) lines.shift();
        if (line.includes('Server is ready')) resolve();
      }
    };
    // keep draining the pipes for the whole life of the process, or a chatty server would block on write
    child.stderr!.on('data', onData);
    child.stdout!.on('data', onData);
  });
  const url = `nats://${host.includes(':') ? `[${host}]` : host}:${opts.port}`;
  const tail = () => lines.join('\n');
  const readyTimeoutMs = opts.readyTimeoutMs ?? 15_000;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    ready.then(() => 'ready' as const),
    exited.then((e) => `exited (code ${e.code}, signal ${e.signal})`),
    spawnError.then((e) => `could not be started: ${e.message}`),
    new Promise<string>((r) => (timer = setTimeout(() => r(`not ready after ${readyTimeoutMs} ms`), readyTimeoutMs))),
  ]);
  clearTimeout(timer);
  let stopping: Promise<void> | undefined;
  const stop = ({ killAfterMs = 3000 } = {}) => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      await exited;
      clearTimeout(t);
    })();
    return stopping;
  };
  if (outcome !== 'ready') {
    await stop({ killAfterMs: 500 });
    throw new Error(`nats-server (${args.join(' ')}) ${outcome}${lines.length ? `; its log:\n${tail()}` : ''}`);
  }
  return { url, port: opts.port, pid: child.pid!, storeDir: opts.storeDir, logTail: tail, stop, exited };
}

/** True when something accepts TCP connections at host:port within timeoutMs. */
export function isReachable(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

export function parseNatsUrl(url: string): { host: string; port: number } {
  let u: URL;
  try {
    u = new URL(url.includes('://') ? url : `nats://${url}`);
  } catch {
    throw new Error(`NATS url ${JSON.stringify(url)} is not a URL (expected nats://host:port)`);
  }
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : 4222 };
}

function haveBinary(binary: string): boolean {
  const r = spawnSync(binary, ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

/**
 * The nats-server binary to start (`binary`, else natsServerBinary()), installed by scripts/ensure-nats-server.sh
 * when it does not run. A $RECOVERY_GRPO_NATS_SERVER that does not run is an error: the script installs PATH's.
 */
export function ensureNatsBinary(binary?: string): string {
  const b = binary ?? natsServerBinary();
  if (haveBinary(b)) return b;
  if (binary === undefined && process.env['RECOVERY_GRPO_NATS_SERVER']) throw new Error(`RECOVERY_GRPO_NATS_SERVER=${b} does not run (${b} --version failed): point it at a nats-server binary or unset it`);
  const r = spawnSync('bash', [ENSURE_SCRIPT], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0 || !haveBinary(b)) throw new Error(`nats-server is not installed and ${ENSURE_SCRIPT} could not install it: install nats-server (apt-get install nats-server) and retry`);
  return b;
}

export interface EnsuredNats {
  url: string;
  /** True when this call started the server (and stop() will stop it). */
  spawned: boolean;
  process?: NatsServerProcess;
  stop(): Promise<void>;
}

/**
 * Makes sure a NATS server answers at `url`: if one does, it is used as is; otherwise (loopback urls only)
 * nats-server is started there with JetStream, installing it first via scripts/ensure-nats-server.sh if the
 * binary is missing. The handle's stop() stops only a server this call started.
 */
export async function ensureNatsServer(opts: { url: string; storeDir?: string; binary?: string }): Promise<EnsuredNats> {
  const { host, port } = parseNatsUrl(opts.url);
  if (await isReachable(host, port)) return { url: opts.url, spawned: false, stop: async () => {} };
  if (!isLoopbackHost(host)) {
    throw new Error(`nothing answers at ${opts.url}, and it is not a local address where nats-server could be started: start NATS there or point the url elsewhere`);
  }
  const binary = ensureNatsBinary(opts.binary);
  const proc = await spawnNatsServer({
    host,
    port,
    binary,
    storeDir: opts.storeDir ?? join(tmpdir(), `recovery-grpo-nats-${port}`),
    maxPayload: CHECKPOINT_MAX_PAYLOAD,
  });
  return { url: opts.url, spawned: true, process: proc, stop: () => proc.stop() };
}
