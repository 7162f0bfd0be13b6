// The GRPO training graph of this tree against another tree's (GRPO_AB_BASE), on the same feeds: are every one of
// its outputs (loss, each gradient, logp, ratio, ...) byte-equal, and what do the two graphs and the policy forward
// cost, interleaved round by round (the arms take turns going first)? onnxruntime session runs only, so the figures
// are the graphs' own, without the trainer's feeds and AdamW (bench/models.bench.ts times those too).
//
//   GRPO_AB_BASE=/work/main [GRPO_AB_SIZES=64,128] [GRPO_AB_MODES=scalar,dense] [GRPO_AB_THREADS=0] [GRPO_AB_REPS=7]
//   [GRPO_AB_N=32] [GRPO_AB_CONFIG=session.dynamic_block_base=4,...] nice -n 10 node --import tsx bench/grpo-ab.ts
//
// Without GRPO_AB_BASE it times this tree alone. The base tree needs its own node_modules (a hardlinked copy will do).
import * as ort from 'onnxruntime-node';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { loadConfig } from '../lib/config/index.ts';
import type { RunConfig } from '../lib/config/index.ts';
import { policySpecOf } from '../lib/models/bundle.ts';
import { initPolicyParams } from '../lib/models/policy.ts';
import { standardNormal } from '../lib/data/random.ts';

interface TreeModules {
  grpoModel(config: RunConfig): Uint8Array;
  policyModel(config: RunConfig): Uint8Array;
  sessionOptions(device: 'cpu', threads: number): ort.InferenceSession.SessionOptions;
}

async function treeModules(root: string): Promise<TreeModules> {
  const bundle = (await import(resolve(root, 'lib/models/bundle.ts'))) as Pick<TreeModules, 'grpoModel' | 'policyModel'>;
  const runtime = (await import(resolve(root, 'lib/graph/runtime.ts'))) as Pick<TreeModules, 'sessionOptions'>;
  return { grpoModel: bundle.grpoModel, policyModel: bundle.policyModel, sessionOptions: runtime.sessionOptions };
}

type Feeds = Record<string, ort.Tensor>;

/** The bench's batch (as bench/models.bench.ts builds it): N distinct images, a perturbed action, random advantages. */
function feedsFor(config: RunConfig, n: number, size: number, dense: boolean): { grpo: Feeds; policy: Feeds } {
  const params = initPolicyParams(policySpecOf(config), 0);
  for (const p of params.values()) if (p.data.every((v) => v === 0) && p.shape.length) p.data.set(standardNormal(p.data.length, 3).map((v) => v * 0.01));
  const t = (d: Float32Array, s: readonly number[]) => new ort.Tensor('float32', d, [...s]);
  const pix = n * 3 * size * size;
  const dims = [n, 3, size, size];
  const m = size - 10;
  const paramFeeds: Feeds = {};
  for (const [k, v] of params) paramFeeds[`param.${k}`] = t(v.data, v.shape);
  const image = Float32Array.from(standardNormal(pix, 1), (v) => 0.5 + 0.1 * v);
  const noise = standardNormal(pix, 2);
  const action = Float32Array.from(image, (v, i) => v + 0.05 * noise[i]);
  const grpo: Feeds = {
    ...paramFeeds,
    image: t(image, dims),
    action: t(action, dims),
    logp_old: dense ? t(new Float32Array(pix).fill(-1), dims) : t(new Float32Array(n).fill(-1), [n]),
    advantage: t(standardNormal(n, 4), [n]),
    ref_mean: t(image, dims),
    clip_low: t(Float32Array.of(0.2), []),
    clip_high: t(Float32Array.of(0.2), []),
    dual_clip: t(Float32Array.of(3), []),
    beta: t(Float32Array.of(0.01), []),
  };
  if (dense) grpo.advantage_map = t(standardNormal(n * 3 * m * m, 5), [n, 3, m, m]);
  return { grpo, policy: { ...paramFeeds, image: t(image, dims), noise: t(noise, dims) } };
}

/** The names of the outputs whose bytes differ between two runs' results (empty: every output byte-equal). */
function differing(a: ort.InferenceSession.OnnxValueMapType, b: ort.InferenceSession.OnnxValueMapType): string[] {
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return names.filter((k) => {
    const [x, y] = [a[k]?.data, b[k]?.data];
    if (!(x instanceof Float32Array) || !(y instanceof Float32Array) || x.length !== y.length) return true;
    return !Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
  });
}

/**
 * GRPO_AB_CONFIG=key=value,...: onnxruntime session config entries (e.g. session.dynamic_block_base=4) added to this
 * tree's GRPO session, beside those its tree sets (round 22).
 */
function withConfig(opts: ort.InferenceSession.SessionOptions, entries: string | undefined): ort.InferenceSession.SessionOptions {
  if (!entries) return opts;
  const extra = structuredClone((opts.extra ?? {}) as Record<string, unknown>);
  for (const entry of entries.split(',')) {
    const [key, value] = entry.split('=');
    if (!key || value === undefined) throw new Error(`GRPO_AB_CONFIG: '${entry}' is not key=value`);
    const path = key.split('.');
    let at = extra;
    for (const part of path.slice(0, -1)) at = (at[part] ??= {}) as Record<string, unknown>;
    at[path.at(-1)!] = value;
  }
  return { ...opts, extra };
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

async function main(): Promise<void> {
  const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const base = process.env.GRPO_AB_BASE;
  const trees = base ? [['base', resolve(base)], ['this', here]] : [['this', here]];
  const mods = await Promise.all(trees.map(([, root]) => treeModules(root)));
  const sizes = (process.env.GRPO_AB_SIZES ?? '64,128').split(',').map(Number);
  const modes = (process.env.GRPO_AB_MODES ?? 'scalar,dense').split(',') as Array<'scalar' | 'dense'>;
  const threads = Number(process.env.GRPO_AB_THREADS ?? 0);
  if (process.env.GRPO_AB_CONFIG) console.log(`this tree's GRPO graph: session config ${process.env.GRPO_AB_CONFIG}`);
  if (process.env.GRPO_AB_INTER) console.log(`this tree's GRPO graph: executionMode parallel, inter:intra = ${process.env.GRPO_AB_INTER}`);
  const reps = Number(process.env.GRPO_AB_REPS ?? 7);
  const n = Number(process.env.GRPO_AB_N ?? 32);
  console.log(`GRPO graph A/B: ${trees.map(([l, r]) => `${l} = ${r}`).join(', ')}; batch ${n}, ${threads || 'default'} threads, ${reps} interleaved rounds after 2 unmeasured; load average ${loadavg().map((v) => v.toFixed(1)).join(' ')}`);
  for (const size of sizes) for (const mode of modes) {
    const config = loadConfig(undefined, [`data.size=${size}`, `grpo.advantageMode=${mode}`]);
    const feeds = feedsFor(config, n, size, mode === 'dense');
    const arms: Array<{ label: string; session: ort.InferenceSession; feeds: Feeds; wall: number[]; cpu: number[]; faults: number[] }> = [];
    for (const [i, [label]] of trees.entries()) {
      const opts = mods[i].sessionOptions('cpu', threads);
      // GRPO_AB_INTER=inter[:intra] runs this tree's GRPO graph with onnxruntime's parallel executor (the base's as its tree sets it).
      const inter = label === 'this' ? process.env.GRPO_AB_INTER : undefined;
      const grpoOpts: ort.InferenceSession.SessionOptions = withConfig(inter
        ? { ...opts, executionMode: 'parallel', interOpNumThreads: Number(inter.split(':')[0]), intraOpNumThreads: Number(inter.split(':')[1] ?? threads) }
        : opts, label === 'this' ? process.env.GRPO_AB_CONFIG : undefined);
      arms.push({ label: `${label} policy forward`, session: await ort.InferenceSession.create(mods[i].policyModel(config), opts), feeds: feeds.policy, wall: [], cpu: [], faults: [] });
      arms.push({ label: `${label} GRPO graph`, session: await ort.InferenceSession.create(mods[i].grpoModel(config), grpoOpts), feeds: feeds.grpo, wall: [], cpu: [], faults: [] });
    }
    const results: ort.InferenceSession.OnnxValueMapType[] = [];
    for (let r = 0; r < reps + 2; r++) {
      for (let j = 0; j < arms.length; j++) {
        const arm = arms[r % 2 ? arms.length - 1 - j : j];
        const c0 = process.cpuUsage();
        const f0 = process.resourceUsage().minorPageFault;
        const t0 = performance.now();
        const out = await arm.session.run(arm.feeds);
        const wall = performance.now() - t0;
        const c = process.cpuUsage(c0);
        const faults = process.resourceUsage().minorPageFault - f0;
        if (r >= 2) {
          arm.faults.push(faults);
          arm.wall.push(wall);
          arm.cpu.push((c.user + c.system) / 1000);
        }
        if (r === 0 && arm.label.endsWith('GRPO graph')) results.push(out);
      }
    }
    console.log(`${size}px ${mode}:`);
    for (const a of arms) console.log(`  ${a.label.padEnd(20)} wall ${median(a.wall).toFixed(0).padStart(5)} ms (min ${Math.min(...a.wall).toFixed(0)}), CPU ${median(a.cpu).toFixed(0).padStart(5)} ms (min ${Math.min(...a.cpu).toFixed(0)}), minor faults ${median(a.faults)}`);
    for (let i = 0; i < trees.length; i++) {
      const [p, g] = [arms[2 * i], arms[2 * i + 1]];
      console.log(`  ${trees[i][0]}: GRPO graph / policy forward ${(median(g.wall) / median(p.wall)).toFixed(2)}x wall, ${(median(g.cpu) / median(p.cpu)).toFixed(2)}x CPU`);
    }
    if (results.length === 2) {
      const diff = differing(results[0], results[1]);
      console.log(`  outputs of the two GRPO graphs: ${diff.length === 0 ? `all ${Object.keys(results[0]).length} byte-equal` : `DIFFER in ${diff.join(', ')}`}`);
    }
    for (const a of arms) await a.session.release();
  }
  console.log(`load average after: ${loadavg().map((v) => v.toFixed(1)).join(' ')}`);
}

await main();
