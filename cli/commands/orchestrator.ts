// `recovery-grpo orchestrator`: the gRPC server that drives a run.
import type { CommandModule } from 'yargs';
import { withConfig, runConfigFrom, type ConfigArgs } from '../options.ts';
import { applyGraphThread, GRAPH_THREAD_OPTION, METRICS_NETWORK_PROTECTED_OPTION, metricsTokenFileOption, natsAuthFromArgs, withNatsAuthOptions, type NatsAuthCliArgs } from '../worker-options.ts';
import { exitAfterGraphs } from '../../lib/graph/graph-thread.ts';
import { onStopSignals, signalExitCode } from '../../lib/worker/stop-signals.ts';
import { applyCheckpointKeyArgs, CHECKPOINT_PUBKEY_OPTION } from '../checkpoint-keys.ts';
import { checkRoleFlags } from '../flag-checks.ts';
import { checkEventLogWritable } from '../../lib/log/event-log.ts';

interface Args extends ConfigArgs, NatsAuthCliArgs {
  listen?: string;
  nats?: string;
  metricsPort?: number;
  metricsHost?: string;
  metricsTokenFile?: string;
  authTokenFile?: string;
  roleTokensFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  requireClientCert?: boolean;
  requireWorkerIdentity?: boolean;
  tlsRefreshSeconds: number;
  events?: string;
  awaitWorkers?: string;
  liftQuarantine?: string[];
  unbind?: string[];
  awaitSeconds: number;
  lingerSeconds: number;
  graphThread?: string;
  checkpointPubkeyFile?: string;
}

/**
 * --linger-seconds' default: a worker notices a dead link by its client keepalive (5 s + 10 s, lib/transport/
 * grpc-common.ts) and redials within its longest reconnect backoff (10 s + 20% jitter, grpc-client.ts backoffDelay):
 * about 27 s, with room. (After completion no learner is refused as a second one, so the heartbeat timeout plays no part.)
 */
const LINGER_SECONDS = 40;
/** setTimeout's limit (2^31 - 1 ms): a longer delay fires at once (also the bound of --tls-refresh-seconds, a setInterval). */
const MAX_LINGER_SECONDS = 2_147_483;

const command: CommandModule<object, Args> = {
  command: 'orchestrator',
  describe: 'run the orchestrator (gRPC server, run state in NATS, /metrics and /health)',
  builder: (y) =>
    withNatsAuthOptions(withConfig(y))
      .option('listen', { type: 'string', describe: 'gRPC host:port (default: orchestrator.listen, 127.0.0.1:50051); non-loopback requires --auth-token-file or mutual TLS' })
      .option('nats', { type: 'string', describe: 'NATS URL (default: nats.url)' })
      .option('metrics-port', { type: 'number', describe: 'port for /metrics and /health (default: metrics.port)' })
      .option('metrics-host', { type: 'string', describe: 'address for /metrics, /health and /api/* (default 127.0.0.1; 0.0.0.0 in a pod, with --metrics-token-file or --metrics-network-protected)' })
      .option('metrics-token-file', metricsTokenFileOption('/metrics, the status page and /api/* then answer'))
      .option('metrics-network-protected', METRICS_NETWORK_PROTECTED_OPTION)
      .option('auth-token-file', { type: 'string', describe: 'file holding the shared token every worker must present (or env RECOVERY_GRPO_TOKEN)' })
      .option('role-tokens-file', { type: 'string', describe: 'file of "<role> <worker-id|*> <token>" lines: each token may connect only as its role (and worker id); docs/security.md' })
      .option('tls-cert', { type: 'string', describe: 'server certificate (PEM file)' })
      .option('tls-key', { type: 'string', describe: 'server key (PEM file)' })
      .option('tls-ca', { type: 'string', describe: 'CA for client certificates (mutual TLS)' })
      .option('tls-refresh-seconds', { type: 'number', default: 60, describe: 'read --tls-cert, --tls-key and --tls-ca again this often: a renewed certificate or CA bundle reaches new handshakes without a restart (docs/security.md); 0: never' })
      .option('events', { type: 'string', describe: 'append every rollout, trained batch and dropped sample as a JSON line to this file (an audit trail); opened (created) at start, so a path that cannot be written is refused before anything else' })
      .option('await-workers', { type: 'string', describe: 'the first GRPO batch waits until this many workers of each role are connected, e.g. rollout=2,reward=1 (at most --await-seconds)' })
      .option('await-seconds', { type: 'number', default: 60, describe: 'how long --await-workers holds GRPO at most; then it starts with whoever is connected' })
      .option('linger-seconds', { type: 'number', default: LINGER_SECONDS, describe: 'after the run completes, keep answering connecting workers with Shutdown this long before exiting: a worker in its reconnect backoff (up to 10 s) or whose cut link ends at the heartbeat timeout is told the run is over instead of redialling for ever (0: exit at once, as the local run does, which stops its workers itself)' })
      .option('lift-quarantine', { type: 'string', array: true, describe: 'rollout worker id(s) whose quarantine, kept in the run state across restarts, is lifted at start (grpo.quarantineAfter; docs/security.md): e.g. an honest worker after its device or grpo.logpTolerance was fixed' })
      .option('unbind', { type: 'string', array: true, describe: '<role>/<worker-id> pair(s) whose binding to the role token that first used the id (kept in the run state across restarts) is dropped at start (docs/security.md): e.g. rollout/rollout-3 after a wildcard token rotation with overlap, or an id squatted by another token' })
      .option('require-client-cert', { type: 'boolean', default: false, describe: 'mutual TLS: refuse clients without a certificate signed by --tls-ca' })
      .option('require-worker-identity', { type: 'boolean', default: false, describe: 'refuse a rollout, reward or learner session whose credentials do not pin the worker id it presents: the shared token, a role token whose line says *, a client certificate without a worker URI (docs/security.md); k8s/components/per-pod-identity turns it on' })
      .option('checkpoint-pubkey-file', CHECKPOINT_PUBKEY_OPTION)
      .option('graph-thread', GRAPH_THREAD_OPTION)
      .check((a) => {
        checkRoleFlags(a);
        if (!(typeof a.lingerSeconds === 'number' && Number.isFinite(a.lingerSeconds) && a.lingerSeconds >= 0 && a.lingerSeconds <= MAX_LINGER_SECONDS)) throw new Error(`--linger-seconds must be a number of seconds from 0 to ${MAX_LINGER_SECONDS}, got ${String(a.lingerSeconds)}`);
        // Server TLS needs its certificate and key; a CA or --require-client-cert without them would be ignored
        // and the server would listen in plaintext, without the authentication asked for.
        if (!(typeof a.tlsRefreshSeconds === 'number' && Number.isInteger(a.tlsRefreshSeconds) && a.tlsRefreshSeconds >= 0 && a.tlsRefreshSeconds <= MAX_LINGER_SECONDS)) throw new Error(`--tls-refresh-seconds must be a whole number of seconds from 0 to ${MAX_LINGER_SECONDS} (0: never), got ${String(a.tlsRefreshSeconds)}`);
        if (!!a.tlsCert !== !!a.tlsKey) throw new Error('--tls-cert and --tls-key go together');
        if (!a.tlsCert && (a.tlsCa !== undefined || a.requireClientCert)) {
          throw new Error(`${a.requireClientCert ? '--require-client-cert' : '--tls-ca'} needs --tls-cert and --tls-key (the server's TLS); without them the server would listen in plaintext`);
        }
        if (a.requireClientCert && a.tlsCa === undefined) throw new Error('--require-client-cert needs --tls-ca (the CA that signs client certificates)');
        return true;
      }) as never,
  handler: async (args) => {
    const { runOrchestrator } = await import('../../orchestrator/main.ts');
    const { formatProgress } = await import('../../orchestrator/progress.ts');
    const { resolveNatsAuth } = await import('../../lib/transport/index.ts');
    const { readSecret } = await import('../../lib/transport/secrets.ts');
    const { createProcessLogger } = await import('../../lib/log/index.ts');
    let orch: Awaited<ReturnType<typeof runOrchestrator>> | undefined;
    // JSON lines on stdout when it is not a terminal (lib/log), with the run id and the policy version.
    const logger = createProcessLogger({ role: 'orchestrator', policyVersion: () => orch?.coordinator.state.learnerVersion }, { fd: 1 });
    const { SetupError, exitCodeFor } = await import('../../lib/config/setup-error.ts');
    const { checkListenAuth } = await import('../../lib/transport/index.ts');
    let complete = false;
    // the first signal stops the run; a second ends the process at once (lib/worker/stop-signals.ts). Stopped before
    // the run completed, it exits 128 + the signal's number, not 0: the orchestrator is a Kubernetes Job with
    // restartPolicy OnFailure, and a 0 from a deleted or evicted pod would complete the Job with the run unfinished
    onStopSignals((signal) => {
      if (orch === undefined) return exitAfterGraphs(signalExitCode(signal)); // still starting: nothing to stop yet
      // exitAfterGraphs: the periodic evaluation may be inside a graph call
      void orch.stop().then(
        () => exitAfterGraphs(complete ? 0 : signalExitCode(signal)),
        (e: unknown) => {
          logger.error(`orchestrator: stopping failed: ${(e as Error)?.message ?? e}`);
          return exitAfterGraphs(1);
        },
      );
    }, { warn: (line) => logger.warn(`orchestrator: ${line}`) });
    try {
      // Refusals (bad configuration, unreadable secrets, a public address without authentication) end the command
      // with one line saying why, and exit code CONFIG_EXIT_CODE: no restart cures them (lib/config/setup-error.ts).
      // Other failures to start (NATS unreachable or refusing the credentials, a port taken): one line, exit code 1.
      let settings;
      try {
        const { applyHeapGrowth } = await import('../../lib/deploy/heap-growth.ts');
        applyHeapGrowth(process.env, 'orchestrator'); // a bad $RECOVERY_GRPO_HEAP_GROWING_PERCENT is refused like a bad configuration
        applyGraphThread(args.graphThread); // the periodic evaluation's graphs run beside dispatch, not in its way
        const config = runConfigFrom(args);
        applyCheckpointKeyArgs({ checkpointPubkeyFile: args.checkpointPubkeyFile }); // its stores verify every announcement
        logger.setContext({ runId: config.run.id });
        const token = readSecret(undefined, args.authTokenFile, 'RECOVERY_GRPO_TOKEN', '--auth-token-file');
        const { readMetricsToken } = await import('../../lib/metrics/index.ts');
        const metricsToken = readMetricsToken(undefined, args.metricsTokenFile);
        const { readRoleTokens } = await import('../../lib/transport/index.ts');
        const roleTokens = args.roleTokensFile ? readRoleTokens(args.roleTokensFile) : undefined;
        const tls = args.tlsCert && args.tlsKey ? { cert: args.tlsCert, key: args.tlsKey, ca: args.tlsCa, requireClientCert: args.requireClientCert, refreshMs: args.tlsRefreshSeconds * 1000 } : undefined;
        const auth = token || tls || roleTokens || args.requireWorkerIdentity ? { token, tls, roleTokens, ...(args.requireWorkerIdentity ? { requireWorkerIdentity: true } : {}) } : undefined;
        checkListenAuth(args.listen ?? config.orchestrator.listen, auth);
        const { parseAwaitWorkers } = await import('../../orchestrator/await-workers.ts');
        const awaitWorkers = args.awaitWorkers !== undefined ? parseAwaitWorkers(args.awaitWorkers, args.awaitSeconds) : undefined;
        // last, after every other refusal: it creates the file (the run would append to it after its first batch)
        if (args.events !== undefined) checkEventLogWritable(args.events, '--events');
        settings = { config, auth, awaitWorkers, metricsToken };
      } catch (e) {
        throw new SetupError((e as Error).message, { cause: e });
      }
      const { config, auth, awaitWorkers, metricsToken } = settings;
      orch = await runOrchestrator({
        config,
        listen: args.listen,
        natsUrl: args.nats,
        natsAuth: resolveNatsAuth(natsAuthFromArgs(args)),
        metricsPort: args.metricsPort,
        metricsHost: args.metricsHost,
        ...(metricsToken !== undefined ? { metricsToken } : {}),
        auth,
        // At a terminal: today's lines (`[orchestrator] ...`, progress as is); else JSON (lib/log).
        ...(logger.format === 'json' ? { log: (l: string) => logger.info(l) } : {}),
        onProgress: (p) => (logger.format === 'json' ? logger.info(formatProgress(p)) : console.log(formatProgress(p))),
        eventsFile: args.events,
        ...(awaitWorkers ? { awaitWorkers } : {}),
        ...(args.liftQuarantine?.length ? { liftQuarantine: args.liftQuarantine.map(String) } : {}),
        ...(args.unbind?.length ? { unbind: args.unbind.map(String) } : {}),
      });
    } catch (e) {
      const msg = (e as Error).message;
      const hint = /^refusing to listen/.test(msg) ? ' (flags: --auth-token-file FILE or --role-tokens-file FILE, or --tls-cert --tls-key --tls-ca --require-client-cert)' : '';
      // A refusal to start stays one plain line on stderr (the exit reason), as for the worker roles.
      console.error(`orchestrator: ${msg}${hint}`);
      return exitAfterGraphs(exitCodeFor(e));
    }
    const running = orch;
    try {
      await running.done;
      complete = true;
    } catch (e) {
      logger.error(`orchestrator: ${(e as Error).message}`);
      await running.stop();
      // a SetupError (a checkpoint numbering batches under another layout met mid-run): 78, no restart cures it
      return exitAfterGraphs(exitCodeFor(e));
    }
    // the workers connected now were sent Shutdown; one reconnecting later (in its backoff, or its cut link not yet
    // noticed) gets it on connecting (orchestrator/main.ts) while this process still serves: without the wait it
    // redialled a stopped orchestrator for ever, and a Kubernetes learner Job never completed (review24e)
    const lingerMs = Math.max(500, args.lingerSeconds * 1000); // at least: let the Shutdown messages reach the workers
    if (args.lingerSeconds > 0) logger.info(`orchestrator: run complete; answering reconnecting workers with Shutdown for ${args.lingerSeconds} s before exiting (--linger-seconds)`);
    await new Promise((r) => setTimeout(r, lingerMs));
    await running.stop();
  },
};
export default command;
