// A run on namespaced hosts: nats-server, the orchestrator, the learner, two rollout workers and one reward
// worker, each in its own network namespace of a NetLab, started through the real command line and supervised
// like the local run (lib/local/supervisor.ts restarts whatever dies; nats-server on the same store directory).
// The servers listen on lab addresses, reachable from every namespace, so both are authenticated and encrypted:
// gRPC with TLS and a token per role (--role-tokens-file), NATS with TLS and a user/password.
//
// How each role is started (its flags and credentials) is `roleArgs`, the one place to change when roles get
// their own NATS users or client certificates.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type RunConfig } from '../../lib/config/index.ts';
import { natsServerBinary } from '../../lib/transport/index.ts';
import { SERVER_PING_CONF } from '../../lib/transport/nats-server.ts';
import { Supervisor } from '../../lib/local/supervisor.ts';
import { NetLab } from './netlab.ts';

const BIN = fileURLToPath(new URL('../../bin/recovery-grpo.mjs', import.meta.url));
const RELAY = fileURLToPath(new URL('./delay-relay.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../../node_modules/tsx/dist/esm/index.mjs', import.meta.url));

export const HOSTS = ['nats', 'orchestrator', 'learner', 'rollout-0', 'rollout-1', 'reward-0'] as const;
export type HostName = (typeof HOSTS)[number];
type Role = 'learner' | 'rollout' | 'reward';
const ROLE_OF: Record<Exclude<HostName, 'nats' | 'orchestrator'>, Role> = { learner: 'learner', 'rollout-0': 'rollout', 'rollout-1': 'rollout', 'reward-0': 'reward' };
const COMMAND_OF: Record<Role, string> = { learner: 'learner', rollout: 'rollout-worker', reward: 'reward-worker' };
const NATS_PORT = 4222;
const GRPC_PORT = 50051;
/** Where the learner's NATS relay listens inside the learner's namespace (netem-less latency). */
const RELAY_PORT = 14222;

export interface ClusterOptions {
  dir: string;
  /** Run configuration overrides (`key=value`). */
  overrides: string[];
  log: (line: string) => void;
}

export class Cluster {
  readonly lab: NetLab;
  readonly sup: Supervisor;
  readonly config: RunConfig;
  readonly storeDir: string;
  /** The run's folder, where the orchestrator writes its event log (events.jsonl). */
  readonly eventsDir: string;
  /** Set when the orchestrator exited 0: the run is over. */
  finished = false;
  /** File whose content is the learner relay's delay in ms (only without netem). */
  readonly learnerDelayFile: string;
  private readonly secrets: string;

  constructor(private readonly o: ClusterOptions) {
    this.lab = new NetLab([...HOSTS]);
    this.sup = new Supervisor(o.log);
    this.storeDir = join(o.dir, 'nats');
    this.eventsDir = o.dir;
    this.learnerDelayFile = join(o.dir, 'learner-delay-ms');
    this.secrets = join(o.dir, 'secrets');
    const runId = `netfault-${this.lab.tag}-${Date.now().toString(36)}`;
    this.config = loadConfig(undefined, [...o.overrides, `run.id=${runId}`, `run.outDir=${o.dir}`]);
  }

  addr(h: HostName): string {
    return this.lab.host(h).addr;
  }

  /** Makes the credentials, starts nats-server, the orchestrator and the four workers (each in its namespace). */
  start(): void {
    mkdirSync(this.secrets, { recursive: true, mode: 0o700 });
    makeCerts(this.secrets, [this.addr('nats'), this.addr('orchestrator')]);
    const tokens = Object.fromEntries((['learner', 'rollout', 'reward'] as const).map((r) => [r, randomBytes(24).toString('hex')])) as Record<Role, string>;
    writeFileSync(join(this.secrets, 'role-tokens'), Object.entries(tokens).map(([r, t]) => `${r} * ${t}`).join('\n') + '\n', { mode: 0o600 });
    for (const [r, t] of Object.entries(tokens)) writeFileSync(join(this.secrets, `${r}.token`), t, { mode: 0o600 });
    writeFileSync(join(this.secrets, 'nats.pass'), randomBytes(24).toString('hex'), { mode: 0o600 });
    const configFile = join(this.o.dir, 'config.json');
    writeFileSync(configFile, JSON.stringify(this.config, null, 2));
    writeFileSync(this.learnerDelayFile, '0');

    // $RECOVERY_GRPO_NATS_SERVER picks the binary (e.g. 2.10, what the image runs); absolute, for `ip netns exec`
    const nats = natsServerBinary();
    this.launch('nats', nats.includes('/') ? resolve(nats) : nats, this.natsArgs());
    this.launch('orchestrator', process.execPath, [BIN, 'orchestrator', ...this.roleArgs('orchestrator'), '--config', configFile, '--events', join(this.eventsDir, 'events.jsonl'), '--linger-seconds', '0'], 0); // its exit ends the run here
    if (!this.lab.netem) {
      this.launch('learner-relay', process.execPath, ['--import', TSX, RELAY, `127.0.0.1:${RELAY_PORT}`, `${this.addr('nats')}:${NATS_PORT}`, this.learnerDelayFile], undefined, 'learner');
    }
    for (const h of ['learner', 'rollout-0', 'rollout-1', 'reward-0'] as const) {
      this.launch(h, process.execPath, [BIN, COMMAND_OF[ROLE_OF[h]], ...this.roleArgs(h)], 0);
    }
  }

  /** nats-server's configuration: JetStream on the store directory, TLS, one user (what exists on main today). */
  private natsArgs(): string[] {
    const s = (f: string) => join(this.secrets, f);
    const conf = s('nats.conf');
    writeFileSync(conf, [
      `listen: "${this.addr('nats')}:${NATS_PORT}"`,
      `jetstream { store_dir: ${JSON.stringify(this.storeDir)} }`,
      `tls { cert_file: ${JSON.stringify(s('server.crt'))}, key_file: ${JSON.stringify(s('server.key'))} }`,
      `authorization { user: "grpo", password: ${JSON.stringify(readFileSync(s('nats.pass'), 'utf8'))} }`,
      SERVER_PING_CONF,
    ].join('\n') + '\n', { mode: 0o600 });
    return ['-c', conf];
  }

  /** A role's flags: where the servers are and its credentials (the token its role is granted, TLS to both). */
  private roleArgs(h: Exclude<HostName, 'nats'>): string[] {
    const s = (f: string) => join(this.secrets, f);
    const natsUrl = h === 'learner' && !this.lab.netem ? `nats://127.0.0.1:${RELAY_PORT}` : `nats://${this.addr('nats')}:${NATS_PORT}`;
    const nats = ['--nats', natsUrl, '--nats-user', 'grpo', '--nats-pass-file', s('nats.pass'), '--nats-tls-ca', s('ca.crt')];
    if (h === 'orchestrator') {
      return [...nats, '--listen', `${this.addr('orchestrator')}:${GRPC_PORT}`, '--role-tokens-file', s('role-tokens'), '--tls-cert', s('server.crt'), '--tls-key', s('server.key')];
    }
    const role = ROLE_OF[h];
    // Keepalive matched to the run's 1 s heartbeats (the orchestrator drops a worker silent for 3 s): a cut worker
    // notices its dead stream 1-4 s into the cut instead of when TCP gets through after it (docs/reliability.md,
    // "Dead streams").
    const keepalive = ['--keepalive-ms', '1000', '--keepalive-timeout-ms', '3000'];
    return [...nats, '--orchestrator', `${this.addr('orchestrator')}:${GRPC_PORT}`, '--auth-token-file', s(`${role}.token`), '--tls-ca', s('ca.crt'), '--worker-id', h, '--threads', '1', ...keepalive];
  }

  private launch(name: string, command: string, args: string[], doneOnExitCode?: number, host: HostName = name as HostName): void {
    const [cmd, argv] = this.lab.inHost(host, [command, ...args]);
    this.sup.start({
      name,
      command: cmd,
      args: argv,
      doneOnExitCode,
      env: { RECOVERY_GRPO_LOG_FORMAT: 'text' },
      onLine: (line) => this.o.log(`${new Date().toISOString().slice(11, 23)} [${name}] ${line}`),
    });
  }

  /** Resolves when the run is over (the orchestrator exited 0). */
  async whenFinished(): Promise<void> {
    await this.sup.whenDone('orchestrator');
    this.finished = true;
  }

  /** The learner relay's added delay (without netem), each way. */
  setLearnerDelay(ms: number): void {
    writeFileSync(this.learnerDelayFile, String(ms));
  }

  /** Stops every process, then removes the namespaces, veths and bridge. Safe to call twice. */
  async stop(): Promise<void> {
    try {
      await this.sup.stopAll(2000);
    } finally {
      this.lab.destroy();
    }
  }
}

/**
 * A CA and one server certificate for both servers (nats-server and the orchestrator), naming their lab
 * addresses and `localhost` (nats.js checks that name when it dials 127.0.0.1: the learner's relay).
 */
function makeCerts(dir: string, ips: string[]): void {
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=recovery-grpo-netfault-ca', '-days', '1');
  writeFileSync(join(dir, 'server.ext'), `subjectAltName=${[...ips.map((ip) => `IP:${ip}`), 'IP:127.0.0.1', 'DNS:localhost'].join(',')}\nextendedKeyUsage=serverAuth\n`);
  ossl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=server');
  ossl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'server.ext');
}
