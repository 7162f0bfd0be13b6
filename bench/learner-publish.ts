// What the learner spends per version besides its step (docs/performance-history/pipeline.md, "Round 12: pipe12"): the real learner
// (runLearner) of a checkout, fed SFT batches of the default run (32 px, batch 32, the default network: a 1.2 MB
// checkpoint and 2.4 MB of AdamW moments per version) by the roles tests' fake orchestrator over gRPC, against a
// nats-server of its own. Per version it prints, from the learner's trace (lib/log/trace.ts): the wall time from
// the step's end to the checkpoint announced (the publish, on the critical path at staleness 0), the learner
// process's CPU in it, the pruning's CPU and wall time (after the acknowledgement), the CPU of the whole batch less
// the step's, and nats-server's CPU per version (from /proc). The step (an SFT step) is the same code in both arms.
// Arms alternate (the order flips every round), each run in a fresh child process with the roles' allocator
// settings, because two checkouts' onnxruntime bindings cannot share a process.
//
//   AB_BASE=/work/main nice -n 10 node --import tsx bench/learner-publish.ts     # PUBLISH_BATCHES=60 PUBLISH_REPS=3
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { readTrace } from '../lib/log/trace.ts';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allocatorEnvFor } from '../lib/deploy/allocator-env.ts';
import { procCpuMs } from './proc-cpu.ts';

const HERE = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BATCHES = Number(process.env.PUBLISH_BATCHES ?? 60);
const REPS = Number(process.env.PUBLISH_REPS ?? 3);
const WARM = 5; // the first versions (sessions created, buffers faulted in) are not counted
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');

interface Figures {
  publishWallMs: number;
  publishCpuMs: number;
  pruneWallMs: number;
  pruneCpuMs: number;
  nonStepCpuMs: number;
  stepCpuMs: number;
  natsCpuMs: number;
}

interface Ev { t: number; cpu: number; ev: string; seq?: number; version?: number }
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function child(checkout: string): Promise<Figures> {
  const traceFile = join(mkdtempSync(join(tmpdir(), 'learner-publish-')), 'trace.jsonl');
  process.env.RECOVERY_GRPO_TRACE = traceFile;
  process.env.RECOVERY_GRPO_THREADS ??= '2'; // the learner's threads in a local run on 2 cores (lib/local/local-run.ts roleThreads)
  const { spawnNatsServer, CHECKPOINT_MAX_PAYLOAD } = await import(resolve(checkout, 'lib/transport/nats-server.ts'));
  const { freePort } = await import(resolve(checkout, 'lib/local/ports.ts'));
  const { startFakeOrchestrator } = await import(resolve(checkout, 'test/roles/helpers.ts'));
  const { runLearner } = await import(resolve(checkout, 'learner/index.ts'));
  const { silentLogger } = await import(resolve(checkout, 'lib/worker/index.ts'));
  const { encodeTensor } = await import(resolve(checkout, 'lib/transport/index.ts'));
  const storeDir = mkdtempSync(join(tmpdir(), 'learner-publish-nats-'));
  const nats = await spawnNatsServer({ port: await freePort(), storeDir, maxPayload: CHECKPOINT_MAX_PAYLOAD });
  const runId = 'publish-bench';
  const input = { run: { id: runId, seed: 0 }, sft: { steps: BATCHES + 10 }, eval: { everyVersions: 0 } };
  const orch = await startFakeOrchestrator({ runId, config: input });
  const learner = await runLearner({ orchestrator: orch.address, nats: nats.url, workerId: 'learner-1', logger: silentLogger });
  try {
    await learner.ready;
    const n = 32;
    const px = 3 * 32 * 32;
    const images = new Float32Array(n * px).map((_, i) => 0.5 + 0.4 * Math.sin(i * 0.731));
    const targets = images.map((v, i) => v + 0.05 * Math.sin(i * 78.233));
    const f32 = (data: Float32Array) => encodeTensor({ dtype: 'float32', shape: [n, 3, 32, 32], data });
    const natsCpu: number[] = [];
    for (let seq = 1; seq <= BATCHES; seq++) {
      const from = orch.received.length;
      const before = procCpuMs(nats.pid);
      await orch.send('learner-1', { train_batch: { batch_id: `${runId}-b${seq}`, batch_seq: seq, kind: 'SFT', lease_ms: 30_000, images: f32(images), targets: f32(targets) } });
      const m = await orch.next((x: { train_result?: { batch_id: string }; task_error?: unknown }) => x.train_result?.batch_id === `${runId}-b${seq}` || !!x.task_error, { from, timeoutMs: 60_000 });
      if (!m.train_result?.applied) throw new Error(`batch ${seq}: ${JSON.stringify(m)}`);
      // the pruning of this version runs after the acknowledgement: let it finish inside this version's figures
      await new Promise((r) => setTimeout(r, 60));
      if (seq > WARM) natsCpu.push(procCpuMs(nats.pid) - before);
    }
    const evs = readTrace<Ev>(traceFile);
    const per = { publishWall: [] as number[], publishCpu: [] as number[], pruneWall: [] as number[], pruneCpu: [] as number[], nonStep: [] as number[], step: [] as number[] };
    // per batch: recv(seq) .. train_start .. train_end .. published .. prune_start .. prune_end .. recv(seq + 1)
    const at = (ev: string, key: 'seq' | 'version', v: number) => evs.find((e) => e.ev === ev && e[key] === v);
    for (let seq = WARM + 1; seq < BATCHES; seq++) {
      const start = at('train_start', 'seq', seq)!;
      const end = at('train_end', 'seq', seq)!;
      const pub = at('published', 'seq', seq)!;
      const ps = at('prune_start', 'version', seq);
      const pe = at('prune_end', 'version', seq);
      const next = at('train_start', 'seq', seq + 1)!;
      per.publishWall.push(pub.t - end.t);
      per.publishCpu.push(pub.cpu - end.cpu);
      if (ps && pe) {
        per.pruneWall.push(pe.t - ps.t);
        per.pruneCpu.push(pe.cpu - ps.cpu);
      }
      per.step.push(end.cpu - start.cpu);
      per.nonStep.push(next.cpu - start.cpu - (end.cpu - start.cpu));
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    return {
      publishWallMs: median(per.publishWall), publishCpuMs: mean(per.publishCpu), pruneWallMs: median(per.pruneWall), pruneCpuMs: mean(per.pruneCpu),
      nonStepCpuMs: mean(per.nonStep), stepCpuMs: mean(per.step), natsCpuMs: mean(natsCpu),
    };
  } finally {
    await learner.stop();
    await orch.close();
    await nats.stop();
    rmSync(storeDir, { recursive: true, force: true });
    rmSync(dirname(traceFile), { recursive: true, force: true });
  }
}

function runChild(checkout: string): Figures {
  const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', checkout], {
    cwd: HERE, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...allocatorEnvFor(process.env) },
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Figures;
}

const f = (x: number) => x.toFixed(2).padStart(6);
function line(name: string, r: Figures): string {
  return `${name.padEnd(28)} publish wall ${f(r.publishWallMs)} ms (median), CPU ${f(r.publishCpuMs)}; prune wall ${f(r.pruneWallMs)}, CPU ${f(r.pruneCpuMs)}; learner CPU outside the step ${f(r.nonStepCpuMs)}; nats-server ${f(r.natsCpuMs)} ms per version (step ${f(r.stepCpuMs)})`;
}

const [flag, checkout] = process.argv.slice(2);
if (flag === '--child') {
  console.log(JSON.stringify(await child(checkout!)));
  process.exit(0); // onnxruntime's threads would keep the process up
}
const arms: Array<[string, string]> = [['this checkout', HERE]];
if (process.env.AB_BASE) arms.push([`base ${process.env.AB_BASE}`, resolve(process.env.AB_BASE)]);
console.log(`learner per version outside its step: ${BATCHES} SFT batches (default run, first ${WARM} not counted), ${REPS} alternating round(s); load average ${load()}`);
for (let round = 0; round < REPS; round++) {
  for (const [name, dir] of round % 2 === 0 ? arms : [...arms].reverse()) console.log(`round ${round + 1}: ${line(name, runChild(dir))}; load ${load()}`);
}
