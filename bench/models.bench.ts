// Model-graph figures (issue: model graphs): SSIM throughput against the ssim.js package on the same
// images, and the GRPO training step time as a multiple of the policy forward at the same batch.
import { Graph } from '../lib/graph/graph.ts';
import { serialize } from '../lib/graph/onnx.ts';
import { GraphSession } from '../lib/graph/runtime.ts';
import { ssim } from '../lib/models/ssim.ts';
import { loadConfig } from '../lib/config/index.ts';
import { initPolicyParams } from '../lib/models/policy.ts';
import { policySpecOf } from '../lib/models/bundle.ts';
import { PolicyRunner } from '../lib/models/runner.ts';
import { PolicyTrainer } from '../lib/models/trainer.ts';
import { standardNormal, rng } from '../lib/data/random.ts';
import { ssim as ssimJs } from 'ssim.js';

/** Median wall time of `reps` calls after one warm-up (the median resists the machine's other work). */
async function time(label: string, reps: number, f: () => Promise<unknown> | unknown): Promise<number> {
  await f();
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await f();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  const median = ms[Math.floor(reps / 2)];
  console.log(`  ${label}: ${median.toFixed(2)} ms (median of ${reps})`);
  return median;
}

async function ssimThroughput(): Promise<void> {
  const N = 64;
  const S = 256;
  const r = rng(1);
  // Smooth images plus noise, as 8-bit values, shared by both implementations.
  const a8 = new Uint8Array(N * S * S * 3);
  const b8 = new Uint8Array(N * S * S * 3);
  for (let i = 0; i < a8.length; i++) {
    const x = (i / 3) % S;
    const v = 128 + 100 * Math.sin(x / 9 + Math.floor(i / (S * S * 3)));
    a8[i] = Math.max(0, Math.min(255, v));
    b8[i] = Math.max(0, Math.min(255, v + r.normal() * 20));
  }
  const toCHW = (u8: Uint8Array) => {
    const out = new Float32Array(u8.length);
    for (let n = 0; n < N; n++) for (let p = 0; p < S * S; p++) for (let c = 0; c < 3; c++) out[((n * 3 + c) * S * S) + p] = u8[(n * S * S + p) * 3 + c] / 255;
    return out;
  };
  const g = new Graph();
  const x = g.input('x', ['N', 3, S, S]);
  const y = g.input('y', ['N', 3, S, S]);
  g.output('ssim', ssim(x, y));
  const session = await GraphSession.create(serialize(g));
  const feeds = { x: { data: toCHW(a8), dims: [N, 3, S, S] }, y: { data: toCHW(b8), dims: [N, 3, S, S] } };
  console.log(`SSIM, ${N} image pairs of ${S}x${S} RGB (same images for both):`);
  const ours = await time('recovery-grpo SSIM graph (onnxruntime, 3 channels, Gaussian window)', 5, () => session.run(feeds));
  const rgba = (u8: Uint8Array, n: number) => {
    const d = new Uint8ClampedArray(S * S * 4);
    for (let p = 0; p < S * S; p++) {
      d.set(u8.subarray((n * S * S + p) * 3, (n * S * S + p) * 3 + 3), p * 4);
      d[p * 4 + 3] = 255;
    }
    return { data: d, width: S, height: S } as unknown as ImageData;
  };
  const pairs = Array.from({ length: N }, (_, n) => [rgba(a8, n), rgba(b8, n)] as const);
  const results: Array<[string, number]> = [];
  for (const variant of ['weber', 'original'] as const) {
    const ms = await time(`ssim.js '${variant}' (JavaScript, luminance only, downsample off)`, 1, () => {
      for (const [p, q] of pairs) ssimJs(p, q, { ssim: variant, downsample: false });
    });
    results.push([variant, ms]);
  }
  console.log(`  images/s: ours ${(N / (ours / 1000)).toFixed(0)}; ratio vs ssim.js: ${results.map(([v, ms]) => `${v} ${(ms / ours).toFixed(1)}x`).join(', ')} (target >= 20x)`);
  await session.release();
}

async function grpoStepRatio(): Promise<void> {
  for (const [size, mode] of [[32, 'scalar'], [32, 'dense'], [64, 'dense']] as const) {
    const config = loadConfig(undefined, [`data.size=${size}`, `grpo.advantageMode=${mode}`]);
    const N = 32;
    const pix = N * 3 * size * size;
    const params = initPolicyParams(policySpecOf(config), 0);
    for (const p of params.values()) if (p.data.every((v) => v === 0) && p.shape.length) p.data.set(standardNormal(p.data.length, 3).map((v) => v * 0.01));
    const runner = await PolicyRunner.create(config);
    const trainer = PolicyTrainer.create(config, params);
    const images = Float32Array.from(standardNormal(pix, 1), (v) => 0.5 + 0.1 * v);
    const noise = standardNormal(pix, 2);
    const roll = await runner.run(params, images, noise, N);
    const dense = mode === 'dense';
    const batch = {
      n: N,
      images,
      actions: roll.action,
      logpOld: dense ? roll.logpMap : roll.logp,
      advantages: standardNormal(N, 4),
      advantageMap: dense ? standardNormal(N * 3 * (size - 10) * (size - 10), 5) : undefined,
      refMean: roll.mean,
    };
    console.log(`GRPO step (${mode} advantages) vs policy forward, ${config.model.arch} width ${config.model.width} depth ${config.model.depth}, batch ${N} at ${size}x${size}:`);
    const fwd = await time('policy forward (policy.onnx)', 21, () => runner.run(params, images, noise, N));
    const graph = await time('GRPO graph: forward + backward (train-grpo.onnx)', 21, () => trainer.grpoForward(batch));
    const step = await time('GRPO step: graph + AdamW update', 21, () => trainer.grpoStep(batch));
    console.log(`  ratio: graph ${(graph / fwd).toFixed(2)}x, full step ${(step / fwd).toFixed(2)}x the forward (target <= 4x)`);
    await runner.release();
    await trainer.release();
  }
}

export async function run(): Promise<void> {
  const only = process.env.BENCH_ONLY;
  if (!only || only === 'ssim') await ssimThroughput();
  if (!only || only === 'grpo') await grpoStepRatio();
}
