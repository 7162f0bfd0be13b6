// The embedded local run (`recovery-grpo demo`): nats-server and the four roles as separate processes on
// loopback, supervised (any of them restarted if it dies), SFT warm start then GRPO on the built-in
// dataset; then an evaluation of the warm start, the final policy and the identity baseline. It trusts as a
// cluster does (docs/security.md): a NATS user per role, a gRPC token per process (role-tokens.ts) and signed
// checkpoints (checkpoint-keys.ts), every secret fresh per run, in a 0600 file of the run folder or a process's
// environment, never on a command line.
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type RunConfig } from '../config/index.ts';
import { decodeCheckpoint, type DecodedCheckpoint } from '../checkpoint/index.ts';
import { closeNats, connectNats, CheckpointStore, ensureNatsBinary, isReachable } from '../transport/index.ts';
import { paramShapesOf, standalonePolicyModel } from '../models/bundle.ts';
import { configEvalSamples, evaluate, gridIndices, imageCount, outputImage, type EvalReport } from '../eval/evaluate.ts';
import type { EvalDraws } from '../data/eval-draws.ts';
import { renderGrid } from '../eval/grid.ts';
import { writeImage } from '../data/image.ts';
import { checkCrashLoop, DEFAULT_CRASH_LOOP, Supervisor, type CrashLoop } from './supervisor.ts';
import { RunPorts } from './ports.ts';
import { allocatorEnvFor } from '../deploy/allocator-env.ts';
import { largestBatch } from '../config/batch-fit.ts';
import { openRunDataset } from '../config/dataset.ts';
import { writeLocalNatsUsers, type LocalNatsUsers } from './nats-config.ts';
import { writeLocalRoleTokens, type LocalRoleTokens } from './role-tokens.ts';
import { writeLocalCheckpointKeys, type LocalCheckpointKeys } from './checkpoint-keys.ts';
import { CHECKPOINT_KEY_ENV, loadVerifyKey } from '../checkpoint/sign.ts';
import { TOKEN_ENV, WIRE_ROLE, type RoleName } from '../worker/options.ts';
import { METRICS_TOKEN_ENV } from '../metrics/index.ts';
import type { NatsRole } from '../transport/nats-permissions.ts';
import { THREADS_ENV } from '../graph/runtime.ts';
import { exitAfterGraphs } from '../graph/graph-thread.ts';
import { onStopSignals, signalExitCode } from '../worker/stop-signals.ts';
import type { Device } from '../graph/device.ts';
import { machineBusySeconds } from './machine-cpu.ts';
import { cpuSecondsIn, readProcStat } from './proc-stat.ts';

const BIN = fileURLToPath(new URL('../../bin/recovery-grpo.mjs', import.meta.url));

export interface LocalRunOptions {
  out: string;
  seed?: number;
  steps?: number;
  sftSteps?: number;
  configFile?: string;
  /** Dotted-key settings laid underneath configFile: they apply only where it leaves a field unset (the demo's own defaults). */
  defaults?: readonly string[];
  overrides?: string[];
  rolloutWorkers?: number;
  rewardWorkers?: number;
  /**
   * onnxruntime threads per operator for each role's processes (--threads). Default (roleThreads): the cores
   * shared evenly among the learner, rollout and reward processes (at least 1 each), the learner twice its share
   * (at most every core), unless $RECOVERY_GRPO_THREADS is set, which then applies to every role.
   */
  threads?: Partial<Record<OrtRole, number>>;
  /** --device for each role's processes (docs/gpu.md; default cpu); the final evaluation scores on the reward workers'. */
  devices?: Partial<Record<OrtRole, Device>>;
  /** Reuse a reachable NATS server instead of starting one (its credentials, if any, come from the environment). */
  natsUrl?: string;
  /**
   * When a child's failures stop the run (lib/local/supervisor.ts CrashLoop; default DEFAULT_CRASH_LOOP, 5 exits
   * within 30 s of their starts): the demo's --crash-loop-exits and --crash-loop-seconds. Checked before anything
   * is written (checkCrashLoop).
   */
  crashLoop?: Partial<CrashLoop>;
  log?: (line: string) => void;
  /**
   * Environment variables for every role's process (orchestrator and workers), over the inherited ones, without
   * setting them in this process (bench/pipeline.bench.ts: each run's $RECOVERY_GRPO_TRACE, which a process reads once).
   */
  env?: Record<string, string>;
  /** Node options for every role's process, before the script (profiling: ['--cpu-prof', '--cpu-prof-dir=DIR']). */
  nodeArgs?: string[];
  /** Called once every process is up (fault tests inject faults from here). */
  onStarted?: (s: Supervisor, info: {
    grpcPort: number; natsPort: number; metricsPort: number; metricsPorts: Record<string, number>; config: RunConfig;
    /** The orchestrator's role-token file and each worker's token; the checkpoint key files. */
    roleTokens: LocalRoleTokens; checkpointKeys: LocalCheckpointKeys;
  }) => void;
}

export type OrtRole = 'learner' | 'rollout-worker' | 'reward-worker';
/** Each process's role by name: its NATS user, and (WIRE_ROLE) the role its gRPC token grants. */
const ROLE_OF: Record<OrtRole, RoleName> = { learner: 'learner', 'rollout-worker': 'rollout', 'reward-worker': 'reward' };

/**
 * The --threads each role gets: explicit settings, else a share of the cores (none when THREADS_ENV is set): the
 * workers an even share each, the learner twice that (at most every core). The learner's GRPO step is the serial
 * part at maxStaleness 0 (the workers wait for its checkpoint) and the bottleneck at 1, so it gets the cores the
 * waiting workers leave (docs/performance-history/pipeline.md, "Round 7 (pipe7)"); results do not depend on the thread count.
 */
export function roleThreads(o: Pick<LocalRunOptions, 'threads' | 'rolloutWorkers' | 'rewardWorkers'>, cores = availableParallelism()): Partial<Record<OrtRole, number>> {
  const processes = 1 + (o.rolloutWorkers ?? 1) + (o.rewardWorkers ?? 1);
  const share = Math.max(1, Math.floor(cores / processes));
  const learner = Math.max(share, Math.min(cores, 2 * share));
  const even = process.env[THREADS_ENV] ? {} : { learner, 'rollout-worker': share, 'reward-worker': share };
  return { ...even, ...o.threads };
}

export interface Summary {
  run_id: string;
  steps: number;
  sft_steps: number;
  final_version: number;
  reward_before: number;
  reward_after: number;
  identity_reward: number;
  before: EvalReport;
  after: EvalReport;
  identity: EvalReport;
  /** How the final evaluation drew corruptions (eval.draws), on how many images, in how many draws. */
  eval_draws: EvalDraws;
  eval_images: number;
  eval_samples: number;
  /** The final evaluation's wall seconds and this process's CPU seconds (user + system, onnxruntime's threads included) during it, sample preparation included. */
  eval_seconds: number;
  eval_cpu_seconds: number;
  /** GRPO actions per second over grpo_seconds. */
  samples_per_second: number;
  /**
   * The GRPO phase: from the acknowledgement of the last SFT batch to that of the last GRPO batch, as the
   * orchestrator reports them (the single-process loop times the same span).
   */
  grpo_seconds: number;
  /**
   * CPU time (user + system) of every process of the run (nats-server included) over grpo_seconds, in all and
   * per process; absent where /proc is not readable.
   */
  grpo_cpu_seconds?: number;
  grpo_cpu_seconds_by_process?: Record<string, number>;
  /**
   * Busy CPU time of the whole machine (every process, all cores) over grpo_seconds: less grpo_cpu_seconds, what
   * other work took meanwhile (lib/local/machine-cpu.ts); absent where /proc/stat is not readable.
   */
  grpo_machine_cpu_seconds?: number;
  wall_seconds: number;
  final_checkpoint: string;
  standalone_policy: string;
  grid: string;
  encoder: string;
  /** The policy family and how evaluation sampled (family, sampler, steps). */
  family: string;
  sampler: string;
  restarts: Record<string, number>;
}

/** CPU seconds (user + system, all threads) each process has used so far; undefined where /proc cannot tell. */
export function cpuSecondsOf(pids: Record<string, number>): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) {
    const stat = readProcStat(pid);
    if (!stat) return undefined;
    out[name] = cpuSecondsIn(stat);
  }
  return out;
}

export { freePort } from './ports.ts';

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what} did not come up within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The local run's configuration: o.configFile over o.defaults, under o.overrides, the seed, the step counts, a fresh
 * run id (unless the overrides fix one: determinism tests) and `out` as run.outDir. Throws a ConfigError, before
 * anything is written.
 */
export function localRunConfig(o: LocalRunOptions): RunConfig {
  const out = resolve(o.out);
  const seed = o.seed ?? 0;
  const fixedId = (o.overrides ?? []).some((x) => x.startsWith('run.id='));
  const overrides = [...(o.overrides ?? []), `run.seed=${seed}`, ...(fixedId ? [] : [`run.id=local-${seed}-${Date.now().toString(36)}`]), `run.outDir=${out}`];
  if (o.steps !== undefined) overrides.push(`grpo.steps=${o.steps}`);
  if (o.sftSteps !== undefined) overrides.push(`sft.steps=${o.sftSteps}`);
  return loadConfig(o.configFile, overrides, o.defaults);
}

export async function runLocal(o: LocalRunOptions): Promise<Summary> {
  const log = o.log ?? ((l: string) => console.log(l));
  const t0 = Date.now();
  const out = resolve(o.out);
  // validated before the output folder is made: a refused configuration leaves nothing behind
  const config = localRunConfig(o);
  const crashLoop = checkCrashLoop({ ...DEFAULT_CRASH_LOOP, ...o.crashLoop });
  // the training data too (a missing --set data.source.path): refused before the output folder is touched, so an
  // earlier run's config.json and credentials there stay (round 26; the orchestrator refuses it as well, exit 78)
  await openRunDataset(config, 'train').catch((e: unknown) => {
    throw new Error(`data.source (${config.data.source.kind}): ${(e as Error)?.message ?? e}`, { cause: e });
  });
  await mkdir(out, { recursive: true });
  const configPath = join(out, 'config.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));

  const sup = new Supervisor(log, crashLoop);
  // Ctrl-C or a SIGTERM stops the children too: a local run never leaves processes behind. A second signal ends
  // this process at once (lib/worker/stop-signals.ts) and SIGKILLs the children first (the first signal's SIGKILL
  // timers would die with it).
  const offSignals = onStopSignals((signal) => {
    log(`[local] ${signal}: stopping every process`);
    // the final evaluation may be inside a graph call in a worker thread: exiting then would abort (graph-thread.ts)
    void sup.stopAll().then(() => exitAfterGraphs(signalExitCode(signal)));
  }, { warn: (line) => log(`[local] ${line}`), again: () => sup.killAll() });
  const ports = new RunPorts(log);
  const grpcPort = await ports.distinct();
  // Every process's metrics port is kept across its restarts, so a scraper finds it again, unless another process
  // took it meanwhile (lib/local/ports.ts): metricsPorts says where each one is now.
  const metricsPorts: Record<string, number> = { orchestrator: await ports.distinct() };
  const metricsPort = metricsPorts.orchestrator!;
  const metricsArgs = async (name: string) => ['--metrics-port', String((metricsPorts[name] = await ports.keep(`${name}'s metrics port`, metricsPorts[name]!)))];
  // The run's gRPC tokens and signing keys, written before any process starts (a failure leaves none behind). Each
  // worker process's role and stable id (its --worker-id, kept across restarts, and so is its token):
  const workers: Array<{ role: OrtRole; name: string }> = [
    { role: 'learner', name: 'learner' },
    ...Array.from({ length: o.rolloutWorkers ?? 1 }, (_, i) => ({ role: 'rollout-worker' as const, name: `rollout-${i}` })),
    ...Array.from({ length: o.rewardWorkers ?? 1 }, (_, i) => ({ role: 'reward-worker' as const, name: `reward-${i}` })),
  ];
  const roleTokens = writeLocalRoleTokens(out, workers.map((w) => ({ workerId: w.name, role: WIRE_ROLE[ROLE_OF[w.role]] })));
  const checkpointKeys = writeLocalCheckpointKeys(out);
  // Only what the run gives each process: no shared token or key file a caller's environment may hold. No metrics
  // token either: the local run serves /metrics, its page and /api/* on 127.0.0.1 only, without one, so that the
  // printed URLs open in a browser and a local Prometheus scrapes them as docs/monitoring.md shows (docs/security.md)
  const noInheritedSecrets = { [TOKEN_ENV]: '', [METRICS_TOKEN_ENV]: '', [CHECKPOINT_KEY_ENV.key]: '', [CHECKPOINT_KEY_ENV.pubkey]: '' };
  // the run's own limits, which the workers' defaults (64 MiB, 4096 samples) may be below: each worker receives the
  // run's messages, and the learner takes the run's largest batch
  const limitArgs = ['--max-message-bytes', String(config.orchestrator.maxMessageBytes)];
  const roleArgs: Record<OrtRole, string[]> = {
    learner: ['--checkpoint-key-file', checkpointKeys.keyFile, '--max-batch', String(largestBatch(config))],
    'rollout-worker': ['--checkpoint-pubkey-file', checkpointKeys.pubkeyFile],
    'reward-worker': [], // reads no checkpoint
  };
  let natsUrl = o.natsUrl;
  let natsPort = 0;
  // The NATS this run starts has one user per role, with least privilege (lib/local/nats-config.ts).
  let natsUsers: LocalNatsUsers | undefined;
  if (!natsUrl) {
    const natsBinary = ensureNatsBinary();
    natsPort = await ports.distinct();
    natsUrl = `nats://127.0.0.1:${natsPort}`;
    natsUsers = writeLocalNatsUsers(out, config.run.id);
    sup.start({ name: 'nats', command: natsBinary, args: ['-c', natsUsers.configFile, '-js', '-a', '127.0.0.1', '-p', String(natsPort), '-sd', join(out, 'nats')], onLine: () => undefined });
    await waitFor('nats-server', () => isReachable('127.0.0.1', natsPort));
  }
  const natsEnv = (role: NatsRole) => natsUsers?.env(role) ?? {};
  const orchestratorAddr = `127.0.0.1:${grpcPort}`;
  // The GRPO phase's bounds: the acknowledgements of the last SFT batch and of the last batch (progress lines
  // `[phase] batch SEQ/TOTAL`), each with the CPU time every process had used by then.
  let grpoStart: { at: number; cpu: Record<string, number> | undefined; machine: number | undefined } | undefined;
  let grpoEnd: { at: number; cpu: Record<string, number> | undefined; machine: number | undefined } | undefined;
  let lastLine = '';
  try {
    sup.start({
      name: 'orchestrator',
      command: process.execPath,
      args: async () => [...(o.nodeArgs ?? []), BIN, 'orchestrator', '--config', configPath, '--listen', orchestratorAddr, '--nats', natsUrl, ...(await metricsArgs('orchestrator')), '--events', join(out, 'events.jsonl'),
        // GRPO starts once every worker started here is connected (at most the flag's default 60 s), not with the first
        '--await-workers', `rollout=${o.rolloutWorkers ?? 1},reward=${o.rewardWorkers ?? 1}`,
        '--role-tokens-file', roleTokens.file, '--checkpoint-pubkey-file', checkpointKeys.pubkeyFile,
        // this run stops every worker itself once the orchestrator exits: no lingering for reconnecting ones
        '--linger-seconds', '0'],
      doneOnExitCode: 0,
      env: { ...allocatorEnvFor(process.env), ...o.env, RECOVERY_GRPO_LOG_FORMAT: 'text', ...natsEnv('orchestrator'), ...noInheritedSecrets }, // the lines below are parsed (lib/log)
      onLine: (line) => {
        const progress = /^\[(?:sft|grpo)\] batch (\d+)\/(\d+) /.exec(line);
        if (progress) {
          lastLine = line;
          const seq = Number(progress[1]);
          if (seq === config.sft.steps) grpoStart = { at: Date.now(), cpu: cpuSecondsOf(sup.pids()), machine: machineBusySeconds() };
          if (seq === Number(progress[2])) grpoEnd = { at: Date.now(), cpu: cpuSecondsOf(sup.pids()), machine: machineBusySeconds() };
        }
        // Show every GRPO step, every 50th SFT step, and everything that is not progress.
        const m = /^\[sft\] batch (\d+)\//.exec(line);
        if (!m || Number(m[1]) % 50 === 0 || Number(m[1]) === config.sft.steps) log(line);
      },
    });
    const threads = roleThreads(o);
    const worker = async (role: OrtRole, name: string) => {
      metricsPorts[name] = await ports.distinct();
      const t = threads[role];
      const device = o.devices?.[role];
      sup.start({
        name,
        command: process.execPath,
        args: async () => [...(o.nodeArgs ?? []), BIN, role, '--orchestrator', orchestratorAddr, '--nats', natsUrl!, ...(await metricsArgs(name)), '--worker-id', name, ...(t !== undefined ? ['--threads', String(t)] : []), ...(device ? ['--device', device] : []), ...limitArgs, ...roleArgs[role]],
        doneOnExitCode: 0,
        env: { ...allocatorEnvFor(process.env), ...o.env, RECOVERY_GRPO_LOG_FORMAT: 'text', ...natsEnv(ROLE_OF[role]), ...noInheritedSecrets, ...roleTokens.env(name) },
        // Workers log every checkpoint swap at info level: show only their warnings and errors.
        onLine: (line) => {
          if (!/ info /.test(line)) log(`[${name}] ${line}`);
        },
      });
    };
    for (const w of workers) await worker(w.role, w.name);
    log(`[local] /metrics and /health on 127.0.0.1: ${Object.entries(metricsPorts).map(([name, port]) => `${name} ${port}`).join(', ')}`);
    o.onStarted?.(sup, { grpcPort, natsPort, metricsPort, metricsPorts, config, roleTokens, checkpointKeys });
    await sup.whenDone('orchestrator');
    const grpoSeconds = ((grpoEnd?.at ?? Date.now()) - (grpoStart?.at ?? t0)) / 1000;
    const [cpu0, cpu1] = [grpoStart?.cpu, grpoEnd?.cpu];
    const grpoCpuBy = cpu0 && cpu1 ? Object.fromEntries(Object.keys(cpu1).filter((k) => k in cpu0).map((k) => [k, cpu1[k]! - cpu0[k]!])) : undefined;
    const grpoCpu = grpoCpuBy ? Object.values(grpoCpuBy).reduce((a, b) => a + b, 0) : undefined;
    const grpoMachineCpu = grpoStart?.machine !== undefined && grpoEnd?.machine !== undefined ? grpoEnd.machine - grpoStart.machine : undefined;
    log(`[local] training finished: ${lastLine}`);

    // Evaluation: the warm start (GRPO's reference), the final policy, and identity.
    // a reader's credentials: the evaluation only fetches checkpoints
    const nc = await connectNats({ url: natsUrl, name: 'local-run-eval', ...natsUsers?.credentials('rollout') });
    let finalCkpt: DecodedCheckpoint;
    let refCkpt: DecodedCheckpoint;
    try {
      // only what the run's learner signed
      const store = await CheckpointStore.open(nc, { runId: config.run.id, readOnly: true, verifyKey: loadVerifyKey(checkpointKeys.pubkeyFile) });
      const latest = await store.latest();
      if (!latest) throw new Error(`no checkpoint signed by the run's key (${checkpointKeys.pubkeyFile}) was published`);
      const shapes = paramShapesOf(config);
      const fetch = async (v: number) => decodeCheckpoint((await store.get(v)).bytes, { expectedShapes: shapes, source: `checkpoint v${v}` });
      finalCkpt = await fetch(latest.version);
      const refVersion = Number(finalCkpt.meta.extra.ref_version ?? latest.version);
      refCkpt = refVersion === latest.version ? finalCkpt : await fetch(refVersion);
    } finally {
      await closeNats(nc);
    }
    const finalPath = join(out, 'final.safetensors');
    const { saveCheckpoint } = await import('../checkpoint/index.ts');
    await saveCheckpoint(finalPath, finalCkpt);
    // The warm start beside it, so `recovery-grpo eval --checkpoint final.safetensors` finds its reference.
    if (refCkpt !== finalCkpt) await saveCheckpoint(join(out, 'reference.safetensors'), refCkpt);
    const standalone = join(out, 'policy-standalone.onnx');
    await writeFile(standalone, standalonePolicyModel(config, finalCkpt.params));

    // eval.draws (default every-type): each evaluation image once per corruption type (docs/evaluation.md).
    const evalT0 = performance.now();
    const evalCpu0 = process.cpuUsage();
    const samples = await configEvalSamples(config);
    const shown = gridIndices(samples, 6);
    const ev = await evaluate(config, samples, {
      identity: { kind: 'identity' },
      before: { kind: 'mean', params: refCkpt.params },
      after: { kind: 'mean', params: finalCkpt.params },
    }, { device: o.devices?.['reward-worker'] ?? 'cpu', keep: shown });
    const evalCpu = process.cpuUsage(evalCpu0);
    const evalSeconds = (performance.now() - evalT0) / 1000;
    const img = (name: string, i: number) => outputImage(ev, name, i);
    const rows = shown.map((i) => ({ label: samples[i]!.corruption.type.replace(/_/g, ' '), images: [samples[i]!.corrupted, img('before', i), img('after', i), samples[i]!.clean] }));
    const gridPath = join(out, 'grid.png');
    await writeImage(renderGrid(['corrupted', 'sft', 'grpo', 'clean'], rows), gridPath);

    const grpoActions = config.grpo.steps * config.grpo.samplesPerBatch * config.grpo.groupSize;
    const summary: Summary = {
      run_id: config.run.id,
      steps: config.grpo.steps,
      sft_steps: config.sft.steps,
      final_version: finalCkpt.meta.version,
      reward_before: ev.reports.before.reward,
      reward_after: ev.reports.after.reward,
      identity_reward: ev.reports.identity.reward,
      before: ev.reports.before,
      after: ev.reports.after,
      identity: ev.reports.identity,
      eval_draws: config.eval.draws,
      eval_images: imageCount(samples),
      eval_samples: samples.length,
      eval_seconds: evalSeconds,
      eval_cpu_seconds: (evalCpu.user + evalCpu.system) / 1e6,
      samples_per_second: grpoSeconds > 0 ? grpoActions / grpoSeconds : 0,
      grpo_seconds: grpoSeconds,
      ...(grpoCpu !== undefined ? { grpo_cpu_seconds: grpoCpu, grpo_cpu_seconds_by_process: grpoCpuBy } : {}),
      ...(grpoMachineCpu !== undefined ? { grpo_machine_cpu_seconds: grpoMachineCpu } : {}),
      wall_seconds: (Date.now() - t0) / 1000,
      final_checkpoint: finalPath,
      standalone_policy: standalone,
      grid: gridPath,
      encoder: ev.encoder,
      family: config.model.family,
      sampler: ev.sampler,
      restarts: { ...sup.restarts },
    };
    await writeFile(join(out, 'summary.json'), JSON.stringify(summary, null, 2));
    return summary;
  } finally {
    offSignals();
    await sup.stopAll();
  }
}
