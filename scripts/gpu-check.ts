// The GPU check: every graph a role runs, on the CPU and on a GPU device with the same inputs, through the classes
// the roles use (PolicyRunner, PolicyTrainer, RewardScorer, FlowRunner, FlowTrainer). For each case it prints the
// largest difference of every output against the CPU's (relative to the output's largest value), whether two runs on
// the device gave the same bits, where onnxruntime placed the nodes (its profile: provider per node and kernel time)
// and the median wall time of a call on each. Exit status 1 when an output differs beyond the tolerance.
//
//   npm run gpu-check -- --device webgpu [--size 64] [--groups 4] [--reps 5] [--cases policy,reward] [--json FILE]
//
// `--device cpu` runs the whole check against the CPU itself (what the test suite does: the machinery, not a GPU).
// docs/gpu.md holds what it measured on an H200.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { loadConfig, type RunConfig } from '../lib/config/index.ts';
import { DEVICES, type Device } from '../lib/graph/device.ts';
import { GraphSession, PROFILE_ENV, readProfiles } from '../lib/graph/runtime.ts';
import { sftModel } from '../lib/models/bundle.ts';
import { paramFeeds } from '../lib/models/feeds.ts';
import { PolicyRunner } from '../lib/models/runner.ts';
import { PolicyTrainer } from '../lib/models/trainer.ts';
import { RewardScorer } from '../lib/models/scorer.ts';
import { encoderKindOf } from '../lib/models/reward.ts';
import { ssimMapSize } from '../lib/models/ssim.ts';
import { grpoHyper } from '../lib/grpo/algorithm.ts';
import { FlowRunner, FlowTrainer, flowRowsOf, type FlowStepRecord } from '../lib/flow/family.ts';
import { standardNormal } from '../lib/data/random.ts';
import { groupImages } from './gpu/inputs.ts';
import { initialParamsWithNoiseOf } from '../lib/models/bundle.ts';
import { compareOutputs, nudged, NOISE_FACTOR, sameBits, type Outputs, type OutputDiff } from './gpu/compare.ts';
import type { TensorMap } from '../lib/checkpoint/tensors.ts';
import { clamp01 } from '../lib/data/image.ts';

interface Instance {
  run(): Promise<Outputs>;
  release(): Promise<void>;
}
interface Case {
  name: string;
  /** What the case runs, as the role that runs it. */
  what: string;
  make(device: Device): Promise<Instance>;
}

export interface CaseResult {
  name: string;
  what: string;
  outputs: OutputDiff[];
  /** Two runs on the device gave the same bits. */
  deterministic: boolean;
  /** Per execution provider: nodes run and their kernel time (ms), from onnxruntime's profile of one device run. */
  placement: Record<string, { nodes: number; ms: number }>;
  cpuMs: number;
  deviceMs: number;
  ok: boolean;
}

/** `params` with every value nudged by one ulp (`nudge`), or as they are. */
function paramsFor(config: RunConfig, nudge: boolean): TensorMap {
  const params = initialParamsWithNoiseOf(config);
  if (nudge) for (const p of params.values()) p.data = nudged(p.data);
  return params;
}

function gaussianCases(base: RunConfig, K: number, nudge: boolean): Case[] {
  const G = base.grpo.groupSize;
  const n = K * G;
  const H = base.data.size;
  const pix = 3 * H * H;
  const images = groupImages(K, G, pix, 1);
  const noise = standardNormal(n * pix, 2);
  const params = paramsFor(base, nudge);
  const grpo = (mode: 'scalar' | 'dense'): Case => ({
    name: `grpo-${mode}`,
    what: `learner: GRPO graph (loss and gradients), ${mode} advantages, ${n} actions at ${H} px`,
    async make(device) {
      const config = loadConfig(undefined, [`data.size=${H}`, `grpo.advantageMode=${mode}`]);
      const cpu = await PolicyRunner.create(config, 'cpu');
      const out = await cpu.run(params, images, noise, n);
      await cpu.release();
      const m = ssimMapSize(H);
      const inputs = {
        n, images, actions: out.action, refMean: out.mean,
        logpOld: mode === 'dense' ? out.logpMap : out.logp,
        advantages: standardNormal(n, 3),
        ...(mode === 'dense' ? { advantageMap: Float32Array.from(standardNormal(n * 3 * m * m, 4), (v) => 0.1 * v) } : {}),
      };
      const trainer = PolicyTrainer.create(config, params, { device });
      return { run: async () => dataOf(await trainer.grpoForward(inputs, grpoHyper(config))), release: () => trainer.release() };
    },
  });
  return [
    {
      name: 'policy',
      what: `rollout worker: policy forward (mean, action, logp, logp map), ${n} actions at ${H} px`,
      async make(device) {
        const r = await PolicyRunner.create(base, device);
        return { run: async () => ({ ...(await r.run(params, images, noise, n)) }), release: () => r.release() };
      },
    },
    {
      name: 'sft',
      what: `learner: SFT graph (loss and gradients), ${n} images at ${H} px`,
      async make(device) {
        const g = await GraphSession.create(sftModel(base), { device });
        const dims = [n, 3, H, H];
        const targets = clamp01(Float32Array.from(images, (v, i) => v + 0.05 * noise[i]!));
        return { run: async () => dataOf(await g.run({ ...paramFeeds(params), image: { data: images, dims }, target: { data: targets, dims } })), release: () => g.release() };
      },
    },
    grpo('scalar'),
    grpo('dense'),
  ];
}

function rewardCase(base: RunConfig, name: string, n: number, H: number, nudge: boolean): Case {
  const pix = 3 * H * H;
  const G = Math.min(n, base.grpo.groupSize);
  const references = groupImages(Math.ceil(n / G), G, pix, 5).subarray(0, n * pix); // groups of G sharing a reference
  const shifted = clamp01(Float32Array.from(references, (v, i) => v + 0.1 * Math.sin(i * 0.37)));
  const candidates = nudge ? nudged(shifted) : shifted;
  return {
    name,
    what: `reward worker: reward graph (SSIM, SSIM map, encoder cosine; encoder ${encoderKindOf(base.reward)}), ${n} images at ${H} px`,
    async make(device) {
      const scorer = new RewardScorer(base.reward, device);
      return { run: async () => ({ ...(await scorer.score({ candidates, references, n, height: H, width: H }, true)) }) as Outputs, release: () => scorer.close() };
    },
  };
}

function flowCases(H: number, K: number, nudge: boolean): Case[] {
  // dense: the learner's largest flow graph (per-element log-densities and the spread map), as before round 33's scalar default
  const config = loadConfig(undefined, [`data.size=${H}`, 'model.family=flow', 'grpo.advantageMode=dense']);
  const G = config.grpo.groupSize;
  const pix = 3 * H * H;
  const params = paramsFor(config, nudge);
  const image = groupImages(1, 1, pix, 6);
  const seeds = Array.from({ length: G }, (_, i) => `gpu-check:${i}`);
  const rolloutOutputs = (r: Awaited<ReturnType<FlowRunner['rollout']>>): Outputs => ({
    images: r.images,
    logp: Float32Array.from(r.steps.flatMap((s) => s.map((x) => x.logp))),
  });
  return [
    {
      name: 'flow-rollout',
      what: `rollout worker: flow SDE rollout (${config.flow.steps} steps; final images and each trained step's logp), ${G} actions at ${H} px`,
      async make(device) {
        const r = await FlowRunner.create(config, device);
        return { run: async () => rolloutOutputs(await r.rollout(params, 'gpu-check', image, seeds, false)), release: () => r.release() };
      },
    },
    {
      name: 'flow-evaluate',
      what: `evaluation: flow ODE sampler (${config.flow.evalSteps} steps), ${K} images at ${H} px`,
      async make(device) {
        const r = await FlowRunner.create(config, device);
        const corrupted = groupImages(K, 1, pix, 7);
        const ids = Array.from({ length: K }, (_, i) => `eval-${i}`);
        return { run: async () => ({ images: await r.evaluate(params, corrupted, ids) }), release: () => r.release() };
      },
    },
    {
      name: 'flow-grpo',
      what: `learner: Flow-GRPO graph (loss and gradients), ${config.grpo.advantageMode} advantages, over one group's trained steps, ${G} actions at ${H} px`,
      async make(device) {
        const cpu = await FlowRunner.create(config, 'cpu');
        const dense = config.grpo.advantageMode === 'dense';
        const roll = await cpu.rollout(params, 'gpu-check', image, seeds, dense);
        const flow = flowRowsOf(roll.steps as FlowStepRecord[][], pix, dense);
        const m = ssimMapSize(H);
        const inputs = {
          n: G, images: groupImages(1, G, pix, 6), advantages: standardNormal(G, 8), flow,
          ...(dense ? { advantageMap: Float32Array.from(standardNormal(G * 3 * m * m, 9), (v) => 0.1 * v) } : {}),
        };
        const refMean = await cpu.referenceMean(params, inputs);
        await cpu.release();
        const trainer = FlowTrainer.create(config, params, { device });
        return { run: async () => dataOf(await trainer.grpoForward({ ...inputs, refMean }, grpoHyper(config))), release: () => trainer.release() };
      },
    },
  ];
}

function dataOf(out: Record<string, { data: Float32Array }>): Outputs {
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data]));
}

const sameOutputs = (a: Outputs, b: Outputs) => Object.keys(a).every((k) => sameBits(a[k]!, b[k]!));

async function medianMs(inst: Instance, reps: number): Promise<number> {
  const ms: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await inst.run();
    ms.push(performance.now() - t0);
  }
  return ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)]!;
}

/** Nodes and kernel time per provider in every profile file of `dir`. */
export function placementOf(dir: string): Record<string, { nodes: number; ms: number }> {
  const out: Record<string, { nodes: number; ms: number }> = {};
  for (const e of readProfiles(dir)) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const p = (out[e.args?.provider ?? 'unknown'] ??= { nodes: 0, ms: 0 });
    p.nodes++;
    p.ms += e.dur / 1000;
  }
  return out;
}

/**
 * `c` on the CPU and on `device`; `nudged` is the same case with its parameters (the reward's candidates) one ulp
 * away, run on the CPU once: each output may differ on the device by NOISE_FACTOR times what that moves it, where
 * that is more than the tolerance.
 */
async function runCase(c: Case, nudgedCase: Case, device: Device, reps: number, tolerance: number): Promise<CaseResult> {
  const cpu = await c.make('cpu');
  const expected = await cpu.run();
  const cpuMs = await medianMs(cpu, reps);
  await cpu.release();
  const n = await nudgedCase.make('cpu');
  const noise = await n.run();
  await n.release();
  const dev = await c.make(device);
  const got = await dev.run();
  const again = await dev.run();
  const deviceMs = await medianMs(dev, reps);
  await dev.release();
  // A fourth instance, profiled: profiling costs time, so the timings above are taken without it.
  const dir = mkdtempSync(join(tmpdir(), 'gpu-check-'));
  process.env[PROFILE_ENV] = dir;
  let placement: CaseResult['placement'];
  try {
    const prof = await c.make(device);
    await prof.run();
    await prof.release();
    placement = placementOf(dir);
  } finally {
    delete process.env[PROFILE_ENV];
    rmSync(dir, { recursive: true, force: true });
  }
  const outputs = compareOutputs(expected, got, tolerance, noise);
  return { name: c.name, what: c.what, outputs, deterministic: sameOutputs(got, again), placement, cpuMs, deviceMs, ok: outputs.every((o) => o.ok) };
}

export interface CheckOptions {
  device: Device;
  size: number;
  groups: number;
  reps: number;
  tolerance: number;
  cases?: readonly string[];
  /** The SSIM target's shape (256 px, 64 images) as a reward case. */
  bigReward: boolean;
}

export async function gpuCheck(o: CheckOptions, log: (line: string) => void = console.log): Promise<CaseResult[]> {
  const base = loadConfig(undefined, [`data.size=${o.size}`]);
  const cases = (nudge: boolean) => [
    ...gaussianCases(base, o.groups, nudge),
    rewardCase(base, 'reward', o.groups * base.grpo.groupSize, o.size, nudge),
    ...(o.bigReward ? [rewardCase(base, 'reward-256', 64, 256, nudge)] : []),
    ...flowCases(o.size, o.groups, nudge),
  ];
  const all = cases(false);
  const nudgedCases = cases(true);
  const unknown = (o.cases ?? []).filter((n) => !all.some((c) => c.name === n));
  if (unknown.length) throw new Error(`--cases: unknown case ${unknown.join(', ')} (cases: ${all.map((c) => c.name).join(', ')})`);
  const chosen = o.cases?.length ? all.filter((c) => o.cases!.includes(c.name)) : all;
  log(`gpu-check: device ${o.device} against cpu (${availableParallelism()} threads), tolerance ${o.tolerance} relative or ${NOISE_FACTOR}x the CPU's own change under a one-ulp nudge, ${o.reps} timed calls each`);
  const results: CaseResult[] = [];
  for (const c of chosen) {
    const r = await runCase(c, nudgedCases[all.indexOf(c)]!, o.device, o.reps, o.tolerance);
    results.push(r);
    const worst = r.outputs.reduce((w, x) => (x.relative > w.relative ? x : w));
    const placed = Object.entries(r.placement).map(([p, v]) => `${p.replace('ExecutionProvider', '')} ${v.nodes} nodes ${v.ms.toFixed(1)} ms`).join(', ');
    log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}: ${r.what}`);
    log(`     worst output ${worst.output}: max |diff| ${worst.maxAbs.toExponential(2)} of ${worst.scale.toExponential(2)} (relative ${worst.relative.toExponential(2)}, allowed ${worst.allowed.toExponential(2)}); same bits twice on ${o.device}: ${r.deterministic ? 'yes' : 'no'}`);
    for (const x of r.outputs) if (!x.ok) log(`     ${x.output}: relative ${x.relative.toExponential(2)} > allowed ${x.allowed.toExponential(2)}`);
    log(`     placement: ${placed}; median call ${r.cpuMs.toFixed(1)} ms on cpu, ${r.deviceMs.toFixed(1)} ms on ${o.device} (${(r.cpuMs / r.deviceMs).toFixed(2)}x)`);
  }
  return results;
}

async function main(): Promise<void> {
  const a = await yargs(hideBin(process.argv))
    .scriptName('gpu-check')
    .option('device', { type: 'string', choices: DEVICES, demandOption: true, describe: 'the device to check against the CPU' })
    .option('size', { type: 'number', default: 64, describe: 'image size (px) of the policy, trainer and reward cases' })
    .option('groups', { type: 'number', default: 4, describe: 'groups per batch (each of grpo.groupSize actions)' })
    .option('reps', { type: 'number', default: 5, describe: 'timed calls per arm (median reported)' })
    .option('tolerance', { type: 'number', default: 1e-3, describe: `largest allowed |device - cpu|, relative to the largest |cpu| of each output (or ${NOISE_FACTOR}x the CPU's own change under a one-ulp nudge of the inputs, where larger)` })
    .option('cases', { type: 'string', describe: 'comma-separated case names (default all)' })
    .option('big-reward', { type: 'boolean', default: true, describe: 'add the reward graph at 256 px x 64 images (the SSIM figure\'s shape)' })
    .option('json', { type: 'string', describe: 'write the results as JSON to this file' })
    .strict()
    .parseAsync();
  for (const [k, v] of [['size', a.size], ['groups', a.groups], ['reps', a.reps]] as const) if (!Number.isInteger(v) || v < 1) throw new Error(`--${k}: must be an integer >= 1, got ${v}`);
  const results = await gpuCheck({ device: a.device as Device, size: a.size, groups: a.groups, reps: a.reps, tolerance: a.tolerance, bigReward: a['big-reward'], ...(a.cases ? { cases: a.cases.split(',') } : {}) });
  if (a.json) writeFileSync(a.json, JSON.stringify(results, null, 1));
  const failed = results.filter((r) => !r.ok).map((r) => r.name);
  console.log(failed.length ? `gpu-check: ${failed.length} of ${results.length} cases differ beyond tolerance: ${failed.join(', ')}` : `gpu-check: ${results.length} of ${results.length} cases agree`);
  process.exitCode = failed.length ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: unknown) => {
    console.error(`gpu-check: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 2;
  });
}
