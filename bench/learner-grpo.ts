// The learner alone on GRPO batches (docs/performance-history/pipeline.md, "Round 14: lrn14"): where its CPU and its serial time go
// beyond the GRPO step, measured without the rest of the pipeline on the cores. Each arm runs in a fresh child:
//
// - `learner`: the real learner of a checkout as its own process (bin/recovery-grpo.mjs learner, 2 onnxruntime
//   threads as in a local run on 2 cores, the roles' allocator settings), its own nats-server, fed by the roles
//   tests' fake orchestrator: 2 SFT batches, then GRPO batches of the default run (32 px, 4 groups x 8 = 32 actions,
//   dense advantages) with one batch always queued behind the one being trained (maxStaleness 1, where the learner
//   is the bottleneck). Since round 27 the run is at grpo.maxStaleness 1 (LEARNER_GRPO_STALENESS, 0 for the runs
//   before) and every row is one version behind, with the honest logp_old of that version (computed here from the
//   learner's stored checkpoint), so the learner's stale-row check checks all 32 rows of each batch and excludes none
//   (the line shows the learner's own counts). Per GRPO batch (the first WARM not counted): the learner process's
//   CPU (/proc), the step's CPU (its trace: train_start -> train_end, the stale check included; the check alone:
//   train_start -> stale_checked, a trace event since round 27), the rest, the wall time per batch, the step's wall time, the
//   publication's (train_end -> published, on its serial path: checkpoint and AdamW moments stored), the
//   announcement's (train_end -> put.announced, what rollout workers wait for at staleness 0; the learner announces
//   only after the moments are stored, so it comes just before published; docs/performance-history/pipeline.md "Round 16: announce16"
//   measured a branch that announces earlier), and nats-server's CPU.
// - `loop`: the same batches through grpoUpdate in one process (2 threads), as the single-process loop trains: the
//   step's CPU and wall time with nothing around it.
//
// Arms alternate (the order flips every round); the batches are the same in every arm (seeded).
//
//   AB_BASE=/work/main nice -n 10 node --import tsx bench/learner-grpo.ts     # LEARNER_GRPO_BATCHES=40 LEARNER_GRPO_REPS=2 LEARNER_GRPO_STALENESS=1
//   LEARNER_GRPO_KINDS=learner ...  the learner arms only (default learner,loop)
//   LEARNER_GRPO_TRACE_OUT=DIR ...   keeps every learner arm's trace (lib/log/trace.ts) in DIR, one file per arm and round:
//                                    learner-<this|base>-r<round>.jsonl (bench/pipeline-trace.ts reads them)
//   LEARNER_GRPO_THREADS=1 ...     both arms on one onnxruntime thread (one lane: the single process's --threads 1)
//   LEARNER_GRPO_PROFILE=DIR ...   the learner process under --cpu-prof (its .cpuprofile in DIR; pipeline-profile.ts --summarise)
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { readTrace } from '../lib/log/trace.ts';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allocatorEnvFor } from '../lib/deploy/allocator-env.ts';
import { procCpuMs } from './proc-cpu.ts';

const HERE = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BATCHES = Number(process.env.LEARNER_GRPO_BATCHES ?? 40);
const REPS = Number(process.env.LEARNER_GRPO_REPS ?? 2);
const WARM = 5;
const THREADS = process.env.LEARNER_GRPO_THREADS ?? '2'; // onnxruntime threads of both arms (LEARNER_GRPO_THREADS; 1: one lane, the shards one after the other)
const DISTINCT = 4; // distinct batches, sent in turn
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');

interface LearnerFigures { kind: 'learner'; checkCpuMs: number; checkWallMs: number; staleChecked: number; staleUnchecked: number; excludedRows: number; cpuMs: number; stepCpuMs: number; wallMs: number; stepWallMs: number; publishWallMs: number; announceWallMs: number; natsCpuMs: number }
interface LoopFigures { kind: 'loop'; stepCpuMs: number; stepWallMs: number }
type Figures = LearnerFigures | LoopFigures;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

// grpo.maxStaleness (LEARNER_GRPO_STALENESS, default 1): every GRPO batch's rows are one version behind the learner's,
// so at 1 the learner's stale-row check (lib/grpo/stale-check.ts) checks all 32 of them, one forward per batch, as a
// pipeline at staleness 1 does when its batches are stale; 0 runs without the check (the rows are then unchecked).
const STALENESS = Number(process.env.LEARNER_GRPO_STALENESS ?? 1);
const configInput = (runId: string) => ({ run: { id: runId, seed: 0 }, sft: { steps: 2 }, grpo: { steps: BATCHES + 10, maxStaleness: STALENESS }, eval: { everyVersions: 0 } });

/** DISTINCT GRPO batches of the default run, rolled out from the initial policy (seeded: the same in every arm). */
async function makeBatches(checkout: string, runId: string) {
  const { parseConfig } = await import(resolve(checkout, 'lib/config/index.ts'));
  const { initialParamsOf } = await import(resolve(checkout, 'lib/models/bundle.ts'));
  const { PolicyRunner } = await import(resolve(checkout, 'lib/models/runner.ts'));
  const { ssimMapSize } = await import(resolve(checkout, 'lib/models/ssim.ts'));
  const config = parseConfig(configInput(runId), { overrides: [], source: 'bench' });
  const H = config.data.size as number;
  const G = config.grpo.groupSize as number;
  const groups = config.grpo.samplesPerBatch as number;
  const n = G * groups;
  const per = 3 * H * H;
  const h = ssimMapSize(H) as number;
  const params = initialParamsOf(config);
  const runner = await PolicyRunner.create(config);
  let s = 1;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const normal = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const out = [];
  for (let b = 0; b < DISTINCT; b++) {
    const images = new Float32Array(n * per);
    for (let g = 0; g < groups; g++) {
      const img = Float32Array.from({ length: per }, (_, i) => 0.5 + 0.3 * Math.sin(i * (0.013 + 0.007 * (b * groups + g))) + 0.05 * normal());
      for (let k = 0; k < G; k++) images.set(img, (g * G + k) * per);
    }
    const noise = Float32Array.from({ length: n * per }, normal);
    const r = await runner.sample(params, images, noise, n, true);
    const advantages = Float32Array.from({ length: n }, () => normal());
    const advantageMap = Float32Array.from({ length: n * 3 * h * h }, () => 0.1 * normal());
    out.push({ n, H, h, images, actions: r.action, logpOld: r.logpMap!, advantages, advantageMap });
  }
  await runner.release();
  return { config, batches: out };
}

/** The per-element log-density [n,3,H,W] of a batch's actions under the learner's stored version (NATS). */
async function honestLogp(checkout: string, natsUrl: string, runId: string) {
  const { CheckpointStore, connectNats, closeNats } = await import(resolve(checkout, 'lib/transport/index.ts'));
  const { decodeCheckpoint } = await import(resolve(checkout, 'lib/checkpoint/index.ts'));
  const { parseConfig } = await import(resolve(checkout, 'lib/config/index.ts'));
  const { PolicyRunner } = await import(resolve(checkout, 'lib/models/runner.ts'));
  const nc = await connectNats({ url: natsUrl, name: 'learner-grpo-bench' });
  const store = await CheckpointStore.open(nc, { runId });
  const runner = await PolicyRunner.create(parseConfig(configInput(runId), { overrides: [], source: 'bench' }));
  const c = Math.fround(0.5 * Math.log(2 * Math.PI));
  return {
    async of(version: number, b: { n: number; images: Float32Array; actions: Float32Array }): Promise<Float32Array> {
      const got = await store.get(version);
      const params = decodeCheckpoint(got.bytes).params as Map<string, { data: Float32Array }>;
      got.release();
      const ls = params.get('log_std')?.data[0];
      if (ls === undefined) throw new Error(`bench: version ${version} holds no log_std`);
      const mean: Float32Array = await runner.mean(params, b.images, b.n);
      const inv2var = Math.fround(0.5 * Math.exp(-2 * ls));
      return Float32Array.from(b.actions, (a, i) => { const d = a - mean[i]!; return -d * d * inv2var - ls - c; });
    },
    async close() { await runner.release(); await closeNats(nc); },
  };
}

async function learnerChild(checkout: string): Promise<LearnerFigures> {
  const runId = 'learner-grpo-bench';
  const traceFile = join(mkdtempSync(join(tmpdir(), 'learner-grpo-')), 'trace.jsonl');
  const { spawnNatsServer, CHECKPOINT_MAX_PAYLOAD } = await import(resolve(checkout, 'lib/transport/nats-server.ts'));
  const { freePort } = await import(resolve(checkout, 'lib/local/ports.ts'));
  const { startFakeOrchestrator } = await import(resolve(checkout, 'test/roles/helpers.ts'));
  const { encodeTensor } = await import(resolve(checkout, 'lib/transport/index.ts'));
  const { batches } = await makeBatches(checkout, runId);
  const storeDir = mkdtempSync(join(tmpdir(), 'learner-grpo-nats-'));
  const nats = await spawnNatsServer({ port: await freePort(), storeDir, maxPayload: CHECKPOINT_MAX_PAYLOAD });
  const orch = await startFakeOrchestrator({ runId, config: configInput(runId) });
  const profile = process.env.LEARNER_GRPO_PROFILE;
  const metricsPort = await freePort();
  const child = spawn(process.execPath, [...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []), resolve(checkout, 'bin/recovery-grpo.mjs'), 'learner', '--orchestrator', orch.address, '--nats', nats.url, '--worker-id', 'learner-1', '--metrics-port', String(metricsPort)], {
    cwd: checkout, stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, ...allocatorEnvFor(process.env), RECOVERY_GRPO_TRACE: traceFile, RECOVERY_GRPO_THREADS: THREADS, RECOVERY_GRPO_LOG_FORMAT: 'text' },
  });
  const exited = new Promise((r) => child.once('exit', r));
  try {
    const f32 = (shape: number[], data: Float32Array) => encodeTensor({ dtype: 'float32', shape, data });
    const b0 = batches[0]!;
    const sftImg = f32([b0.n, 3, b0.H, b0.H], b0.images);
    const resultOf = async (seq: number, from: number) => {
      const m = await orch.next((x: { train_result?: { batch_id: string }; task_error?: unknown }) => x.train_result?.batch_id === `${runId}-b${seq}` || !!x.task_error, { from, timeoutMs: 120_000 });
      if (!m.train_result?.applied) throw new Error(`batch ${seq}: ${JSON.stringify(m)}`);
    };
    for (let seq = 1; seq <= 2; seq++) {
      const from = orch.received.length;
      await orch.send('learner-1', { train_batch: { batch_id: `${runId}-b${seq}`, batch_seq: seq, kind: 'SFT', lease_ms: 60_000, images: sftImg, targets: f32([b0.n, 3, b0.H, b0.H], b0.images) } });
      await resultOf(seq, from);
    }
    await new Promise((r) => setTimeout(r, 2000)); // prepareGrpo (sessions, warm-up) after the last SFT batch
    const wire = batches.map((b) => ({
      images: f32([b.n, 3, b.H, b.H], b.images), actions: f32([b.n, 3, b.H, b.H], b.actions), logp_old: f32([b.n, 3, b.H, b.H], b.logpOld),
      advantages: f32([b.n], b.advantages), advantage_map: f32([b.n, 3, b.h, b.h], b.advantageMap),
      sample_ids: Array.from({ length: b.n }, (_, i) => `s${Math.floor(i / 8)}`), group_indices: Array.from({ length: b.n }, (_, i) => i % 8),
    }));
    // At maxStaleness >= 1 the rows must pass the learner's stale-row check, as a pipeline's honest rows do: their
    // logp_old is recomputed here under the version they claim (seq - 2, stored by the learner before this batch is
    // sent: one batch is always queued), per element in float32 as the policy graph's logp_map (the check's own
    // formula, lib/grpo/stale-check.ts gaussianRowLogp). This process's CPU is not the learner's.
    const honestLogpOld = STALENESS > 0 ? await honestLogp(checkout, nats.url, runId) : undefined;
    const send = async (k: number) => {
      const seq = 2 + k;
      const b = batches[(k - 1) % DISTINCT]!;
      const logp = honestLogpOld ? { logp_old: f32([b.n, 3, b.H, b.H], await honestLogpOld.of(seq - 2, b)) } : {};
      return orch.send('learner-1', { train_batch: { batch_id: `${runId}-b${seq}`, batch_seq: seq, kind: 'GRPO', lease_ms: 60_000, ...wire[(k - 1) % DISTINCT]!, ...logp, behaviour_versions: Array(b0.n).fill(seq - 2) } });
    };
    const doneAt: number[] = [];
    let cpu0 = 0;
    let nats0 = 0;
    let from = orch.received.length;
    await send(1);
    await send(2);
    for (let k = 1; k <= BATCHES; k++) {
      await resultOf(2 + k, from);
      from = orch.received.length;
      doneAt.push(performance.now());
      if (k === WARM) [cpu0, nats0] = [procCpuMs(child.pid!), procCpuMs(nats.pid)];
      if (k + 2 <= BATCHES) await send(k + 2);
    }
    await new Promise((r) => setTimeout(r, 100)); // the last prune
    // what the stale-row check did over the run (every arm must check the same rows: 32 per GRPO batch at staleness 1)
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const staleRows = (outcome: string) => Number(new RegExp(`^recovery_grpo_logp_stale_rows_total\\{[^}]*outcome="${outcome}"[^}]*\\} (\\S+)`, 'm').exec(metrics)?.[1] ?? 0);
    const excludedRows = Number(/^recovery_grpo_logp_rows_excluded_total(?:\{[^}]*\})? (\S+)/m.exec(metrics)?.[1] ?? 0);
    await honestLogpOld?.close();
    if (process.env.LEARNER_GRPO_TRACE_OUT) copyFileSync(traceFile, join(process.env.LEARNER_GRPO_TRACE_OUT, `learner-${process.env.LEARNER_GRPO_ARM_TAG ?? 'arm'}.jsonl`));
    const counted = BATCHES - WARM;
    const cpuMs = (procCpuMs(child.pid!) - cpu0) / counted;
    const natsCpuMs = (procCpuMs(nats.pid) - nats0) / counted;
    const evs = readTrace<{ t: number; cpu: number; ev: string; seq?: number }>(traceFile);
    const at = (ev: string, seq: number) => evs.find((e) => e.ev === ev && e.seq === seq)!;
    // the checkpoint store's own trace names the version (= the batch seq here: v0, then one per batch)
    const announcedAt = (version: number) => (evs as { t: number; ev: string; version?: number }[]).find((e) => e.ev === 'put.announced' && e.version === version)!;
    const step: number[] = [];
    const stepWall: number[] = [];
    // the stale-row check: train_start -> stale_checked (a trace event since round 27; absent before: NaN)
    const check: number[] = [];
    const checkWall: number[] = [];
    const pub: number[] = [];
    const ann: number[] = [];
    for (let k = WARM + 1; k <= BATCHES; k++) {
      const s = at('train_start', 2 + k);
      const e = at('train_end', 2 + k);
      step.push(e.cpu - s.cpu);
      const c = evs.find((x) => x.ev === 'stale_checked' && x.seq === 2 + k);
      check.push(c ? c.cpu - s.cpu : NaN);
      checkWall.push(c ? c.t - s.t : NaN);
      stepWall.push(e.t - s.t);
      pub.push(at('published', 2 + k).t - e.t);
      ann.push(announcedAt(2 + k).t - e.t);
    }
    return { kind: 'learner', checkCpuMs: mean(check), checkWallMs: median(checkWall), staleChecked: staleRows('checked'), staleUnchecked: staleRows('not_sampled') + staleRows('not_held'), excludedRows, cpuMs, stepCpuMs: mean(step), wallMs: (doneAt.at(-1)! - doneAt[WARM - 1]!) / counted, stepWallMs: median(stepWall), publishWallMs: median(pub), announceWallMs: median(ann), natsCpuMs };
  } finally {
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    await orch.close();
    await nats.stop();
    rmSync(storeDir, { recursive: true, force: true });
    rmSync(dirname(traceFile), { recursive: true, force: true });
  }
}

async function loopChild(checkout: string): Promise<LoopFigures> {
  process.env.RECOVERY_GRPO_THREADS = THREADS;
  const { config, batches } = await makeBatches(checkout, 'learner-grpo-bench');
  const { initialParamsOf } = await import(resolve(checkout, 'lib/models/bundle.ts'));
  const { PolicyRunner } = await import(resolve(checkout, 'lib/models/runner.ts'));
  const { PolicyTrainer } = await import(resolve(checkout, 'lib/models/trainer.ts'));
  const { grpoUpdate } = await import(resolve(checkout, 'lib/grpo/update.ts'));
  const { grpoHyper, startGrpoPhase } = await import(resolve(checkout, 'lib/grpo/algorithm.ts'));
  const params = initialParamsOf(config);
  const trainer = PolicyTrainer.create(config, params);
  const refParams = startGrpoPhase(params, trainer.optimizer);
  const runner = await PolicyRunner.create(config);
  const reference = { params: refParams, runner: async () => runner };
  const hyper = grpoHyper(config);
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let k = 1; k <= BATCHES; k++) {
    const b = batches[(k - 1) % DISTINCT]!;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await grpoUpdate(trainer, reference, { n: b.n, images: b.images, actions: b.actions, logpOld: b.logpOld, advantages: b.advantages, advantageMap: b.advantageMap }, hyper);
    const c = process.cpuUsage(c0);
    if (!r.step.applied) throw new Error(`loop step ${k} not applied: ${r.step.reason}`);
    if (k > WARM) {
      cpu.push((c.user + c.system) / 1000);
      wall.push(performance.now() - t0);
    }
  }
  return { kind: 'loop', stepCpuMs: mean(cpu), stepWallMs: median(wall) };
}

function runChild(checkout: string, kind: 'learner' | 'loop', tag: string): Figures {
  const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', kind, checkout], {
    cwd: HERE, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...allocatorEnvFor(process.env), LEARNER_GRPO_ARM_TAG: tag },
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Figures;
}

const f = (x: number | null) => (x === null || Number.isNaN(x) ? 'n/a' : x.toFixed(2)).padStart(6);
function line(name: string, r: Figures): string {
  if (r.kind === 'loop') return `${name.padEnd(34)} loop: step CPU ${f(r.stepCpuMs)} ms, wall ${f(r.stepWallMs)} (median)`;
  return `${name.padEnd(34)} learner: CPU ${f(r.cpuMs)} ms per batch (step ${f(r.stepCpuMs)} with its stale check ${f(r.checkCpuMs)}, rest ${f(r.cpuMs - r.stepCpuMs)}); wall ${f(r.wallMs)} per batch (step ${f(r.stepWallMs)} with its stale check ${f(r.checkWallMs)}, publish ${f(r.publishWallMs)}, announced ${f(r.announceWallMs)}, medians); nats-server CPU ${f(r.natsCpuMs)}; stale rows checked ${r.staleChecked}, unchecked ${r.staleUnchecked}, rows excluded ${r.excludedRows}`;
}

const [flag, kind, checkout] = process.argv.slice(2);
if (flag === '--child') {
  console.log(JSON.stringify(kind === 'loop' ? await loopChild(checkout!) : await learnerChild(checkout!)));
  process.exit(0); // onnxruntime's threads would keep the process up
}
const arms: Array<[string, string, string]> = [['this checkout', HERE, 'this']];
if (process.env.AB_BASE) arms.push([`base ${process.env.AB_BASE}`, resolve(process.env.AB_BASE), 'base']);
if (process.env.LEARNER_GRPO_TRACE_OUT) mkdirSync(process.env.LEARNER_GRPO_TRACE_OUT, { recursive: true });
const kinds = (process.env.LEARNER_GRPO_KINDS ?? 'learner,loop').split(',') as Array<'learner' | 'loop'>;
console.log(`learner on GRPO batches: ${BATCHES} batches (default run, one queued; first ${WARM} not counted), ${REPS} alternating round(s); load average ${load()}`);
for (let round = 0; round < REPS; round++) {
  for (const [name, dir, tag] of round % 2 === 0 ? arms : [...arms].reverse()) {
    for (const k of kinds) console.log(`round ${round + 1}: ${line(name, runChild(dir, k, `${tag}-r${round + 1}`))}; load ${load()}`);
  }
}
